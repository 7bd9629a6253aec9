"""Stripe metadata: the link keys, Stripe's limits, and what must never be stored in it.

Metadata links Stripe objects to our rows (``order_id``, ``user_id``); it is not storage.
Stripe's limits: at most 50 keys, a key at most 40 characters and without ``[`` or ``]``, a
value at most 500 characters; an empty value deletes the key. Secrets and card data never go
in it: Stripe shows metadata to everyone with Dashboard access and copies it into events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from config import sensitive

MAX_KEYS = 50
MAX_KEY_LENGTH = 40
MAX_VALUE_LENGTH = 500

# The keys that tie a Stripe object to our rows; changing them needs their own permission.
LINK_KEYS = ("order_id", "user_id")
# Keys nobody edits by hand: dj-stripe reads its endpoint uuid back from this one.
RESERVED_KEYS = frozenset({"djstripe_uuid"})


def key_errors(key: str) -> list[str]:
    errors = []
    if not key:
        errors.append("A key is required.")
        return errors
    if len(key) > MAX_KEY_LENGTH:
        errors.append(f"Keys can be at most {MAX_KEY_LENGTH} characters ({len(key)} given).")
    if "[" in key or "]" in key:
        errors.append("Keys cannot contain square brackets ([ or ]).")
    if key != key.strip():
        errors.append("Keys cannot start or end with spaces.")
    if sensitive.is_sensitive_key(key):
        errors.append("Keys named like a password, secret or token are refused: no secrets here.")
    if sensitive.is_sensitive(key):
        errors.append("This key looks like a secret or card number; those never go in metadata.")
    return errors


def value_errors(value: str) -> list[str]:
    errors = []
    if len(value) > MAX_VALUE_LENGTH:
        errors.append(f"Values can be at most {MAX_VALUE_LENGTH} characters ({len(value)} given).")
    if sensitive.is_secret(value):
        errors.append(
            "This value looks like a Stripe secret (sk_, rk_, whsec_ or a client secret); "
            "secrets never go in metadata."
        )
    if sensitive.is_card_number(value):
        errors.append("This value looks like a card number; card data never goes in metadata.")
    return errors


def changes_between(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, str]:
    """What to send Stripe to turn ``before`` into ``after``: changed keys, "" for removed."""
    changes = {key: value for key, value in after.items() if before.get(key) != value}
    changes.update({key: "" for key in before if key not in after})
    return changes


def apply_changes(before: Mapping[str, str], changes: Mapping[str, str]) -> dict[str, str]:
    """The metadata Stripe will hold after ``changes`` (an empty value deletes the key)."""
    after = dict(before)
    for key, value in changes.items():
        if value == "":
            after.pop(key, None)
        else:
            after[key] = value
    return after


def count_error(metadata: Mapping[str, str]) -> str | None:
    if len(metadata) > MAX_KEYS:
        return f"Stripe allows at most {MAX_KEYS} keys; this would leave {len(metadata)}."
    return None


def link_keys_in(keys: Iterable[str]) -> list[str]:
    return [key for key in keys if key in LINK_KEYS]


def link_keys(obj: Mapping[str, Any]) -> dict[str, str]:
    """The link keys an object carries (an invoice's come from its subscription too)."""
    metadata = dict(obj.get("metadata") or {})
    if obj.get("object") == "invoice":
        parent = ((obj.get("parent") or {}).get("subscription_details") or {}).get("metadata")
        metadata = {**(parent or {}), **metadata}
    return {key: str(metadata[key]) for key in LINK_KEYS if metadata.get(key)}


# --- What a link key points at --------------------------------------------------------------


@dataclass(frozen=True)
class LinkTarget:
    """A row a link key names, for the confirmation step and the object's page."""

    key: str
    value: str
    label: str  # "order ord_… (paid, $19.00, customer@example.com)"
    admin_url: str
    obj: Any


@dataclass(frozen=True)
class LinkResolver:
    """How one link key finds its rows: ``find`` maps values to objects (one query)."""

    noun: str
    find: Callable[[list[str]], dict[str, Any]]
    label: Callable[[Any], str]
    admin_url: Callable[[Any], str]
    # Rows an object is tied to without carrying the key (a subscription's charge and its
    # order, through the invoice it paid); None when the key's owner cannot tell.
    tied_to: Callable[[str], list[Any]] | None = None
    # The other way: the Stripe ids tied to the row a value names (an order's objects).
    tied_ids: Callable[[str], list[str]] | None = None
    # ``tied_to`` for a page of objects at once, as the values the key would hold (one query):
    # a list's column finds what each object's page finds.
    tied_values: Callable[[list[str]], dict[str, list[str]]] | None = None


_RESOLVERS: dict[str, LinkResolver] = {}


def link_register(key: str, resolver: LinkResolver) -> None:
    """The app owning a link key says how to find its rows (orders registers ``order_id``)."""
    if key not in LINK_KEYS:
        raise ValueError(f"{key} is not a link key")
    _RESOLVERS[key] = resolver


def link_targets(metadata: Mapping[str, Any]) -> dict[str, LinkTarget | None]:
    """For each link key present: what it points at, or None when no such row exists."""
    found: dict[str, LinkTarget | None] = {}
    for key in LINK_KEYS:
        value = metadata.get(key)
        resolver = _RESOLVERS.get(key)
        if not value or resolver is None:
            continue
        obj = resolver.find([str(value)]).get(str(value))
        found[key] = (
            None
            if obj is None
            else LinkTarget(
                key=key,
                value=str(value),
                label=resolver.label(obj),
                admin_url=resolver.admin_url(obj),
                obj=obj,
            )
        )
    return found


def tied_targets(key: str, stripe_id: str) -> list[LinkTarget]:
    """What an object without ``key`` in its metadata is still tied to (for its page)."""
    resolver = _RESOLVERS.get(key)
    if resolver is None or resolver.tied_to is None:
        return []
    return [
        LinkTarget(
            key=key, value="", label=resolver.label(obj), admin_url=resolver.admin_url(obj), obj=obj
        )
        for obj in resolver.tied_to(stripe_id)
    ]


def tied_values(key: str, stripe_ids: list[str]) -> dict[str, list[str]]:
    """For objects without ``key`` in their metadata: the values it would hold, by the rows
    they are tied to (a subscription's charges and their order), for many objects in one query."""
    resolver = _RESOLVERS.get(key)
    if resolver is None or resolver.tied_values is None or not stripe_ids:
        return {}
    return resolver.tied_values(stripe_ids)


# How the app owning the link keys keeps its own links of an object (orders fills an order's
# foreign key to its session, a customer's user): ``keeper(obj, write)`` answers "linked" (the
# keys resolve), "unlinked" (they point at nothing) or "none" (no keys).
_KEEPER: list[Callable[[Mapping[str, Any], bool], str]] = []


def link_keeper_register(keeper: Callable[[Mapping[str, Any], bool], str]) -> None:
    _KEEPER[:] = [keeper]


def link_keep(*, obj: Mapping[str, Any], write: bool = True) -> str:
    """Resolve an object's link keys and, with ``write``, let their owner fill its own links
    (call inside a transaction: the owner may lock its rows); "none" when nobody owns them."""
    return _KEEPER[0](obj, write) if _KEEPER else "none"


def tied_stripe_ids(key: str, value: str) -> list[str]:
    """The Stripe ids tied to the row ``value`` names (an order's objects, for a search)."""
    resolver = _RESOLVERS.get(key)
    if resolver is None or resolver.tied_ids is None:
        return []
    return resolver.tied_ids(value)


def link_errors(
    metadata: Mapping[str, str], *, keys: Iterable[str], owners: Iterable[str] = ()
) -> dict[str, str]:
    """Problems with the link keys in ``keys`` as they would be in ``metadata``.

    Each must name an existing row, and every user the object would then belong to must be
    the same one: the ``user_id`` key, the named order's user, and ``owners`` (the users the
    object already belongs to: its customer's, its tied orders'; see ``object_owners``).
    Checked whenever either key changes, so removing ``user_id`` first and then pointing
    ``order_id`` at another customer's order is refused too.
    """
    errors: dict[str, str] = {}
    targets = link_targets(metadata)
    for key in keys:
        if key in LINK_KEYS and metadata.get(key) and targets.get(key) is None:
            noun = _RESOLVERS[key].noun if key in _RESOLVERS else key
            errors[key] = (
                f"No {noun} {metadata[key]!r} exists; a link must name an existing {noun}."
            )
    touched = sorted(set(keys) & set(LINK_KEYS))
    if not touched or errors:
        return errors
    claims: dict[str, str] = {user: "this object's customer or orders" for user in owners}
    if (user := targets.get("user_id")) is not None:
        claims.setdefault(user.value, f"user_id {user.value}")
    if (order := targets.get("order_id")) is not None:
        owner_id = getattr(order.obj, "user_id", None)
        if owner_id is not None:
            claims.setdefault(str(owner_id), f"order {order.value}")
    if len(claims) > 1:
        errors[touched[0]] = (
            "The object would belong to more than one user ("
            + "; ".join(f"user {u} through {why}" for u, why in sorted(claims.items()))
            + "): a link must agree with the object's customer, its orders and the other key."
        )
    return errors


def object_owners(*, data: Mapping[str, Any]) -> list[str]:
    """The users an object belongs to now, apart from its own link keys: its customer's
    subscriber (or the customer itself, for a customer) and the users of the orders it is
    tied to (``tied_to``)."""
    from djstripe.models import Customer

    owners: set[str] = set()
    customer = data.get("id") if data.get("object") == "customer" else data.get("customer")
    if isinstance(customer, Mapping):
        customer = customer.get("id")
    if customer:
        subscriber = Customer.objects.filter(id=customer).values_list("subscriber_id", flat=True)
        owners.update(str(user) for user in subscriber if user is not None)
    resolver = _RESOLVERS.get("order_id")
    if resolver is not None and resolver.tied_to is not None and data.get("id"):
        for order in resolver.tied_to(str(data["id"])):
            if getattr(order, "user_id", None) is not None:
                owners.add(str(order.user_id))
    return sorted(owners)


def _user_resolver() -> LinkResolver:
    from django.contrib.auth import get_user_model

    from billing.viewer import page_url

    user_model = get_user_model()

    def find(values: list[str]) -> dict[str, Any]:
        ids = [v for v in values if v.isdigit()]
        return {str(u.pk): u for u in user_model.objects.filter(pk__in=ids)}

    def label(user: Any) -> str:
        email = getattr(user, "email", "")
        return f"user {user.pk} ({user.get_username()}{', ' + email if email else ''})"

    def admin_url(user: Any) -> str:
        meta = user_model._meta
        return page_url(f"{meta.app_label}_{meta.model_name}", user.pk)

    return LinkResolver(noun="user", find=find, label=label, admin_url=admin_url)


def register_user_link() -> None:
    link_register("user_id", _user_resolver())
