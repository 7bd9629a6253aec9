"""Links between Stripe objects and the shop's orders and users, through the metadata link keys.

The shop puts ``order_id`` and ``user_id`` (``billing.metadata.LINK_KEYS``) on the Checkout
Session, its payment intent or subscription, and the customer; Stripe copies them to a charge
when it is created and to an invoice's ``parent.subscription_details.metadata``. Here: how the
support console finds and names an order (``register``), and, for the operators' tools
(backfill, reconcile), what keys an object carries, what they point at, and which link the shop
keeps for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from djstripe.models import Customer

from billing.metadata import LinkResolver, link_keeper_register, link_keys, link_register
from billing.money import format_amount
from billing.viewer import page_url
from orders.models import Order
from orders.references import orders_tied, public_ids_tied, stripe_ids_tied
from orders.services import state
from orders.wording import status_words


def _find(values: list[str]) -> dict[str, Any]:
    return {o.public_id: o for o in Order.objects.filter(public_id__in=values)}


def _label(order: Order) -> str:
    total = format_amount(order.amount_total, order.currency)
    status = status_words(order.status)
    return f"order {order.public_id} ({status}, {total}, {order.email or 'no email'})"


def _admin_url(order: Order) -> str:
    return page_url("orders_order", order.public_id)


def _tied_to(stripe_id: str) -> list[Order]:
    return list(Order.objects.filter(pk__in=orders_tied(stripe_id=stripe_id))[:5])


def register() -> None:
    link_register(
        "order_id",
        LinkResolver(
            noun="order",
            find=_find,
            label=_label,
            admin_url=_admin_url,
            tied_to=_tied_to,
            tied_ids=lambda public_id: stripe_ids_tied(public_id=public_id),
            tied_values=lambda ids: public_ids_tied(stripe_ids=ids),
        ),
    )
    link_keeper_register(lambda obj, write: object_link(obj=obj, write=write).status)


# --- The operators' tools -------------------------------------------------------------------

# Stripe object type -> the Order foreign key that points at it.
ORDER_FIELDS = {
    "checkout.session": "checkout_session",
    "payment_intent": "payment_intent",
    "subscription": "subscription",
}


@dataclass(frozen=True)
class Link:
    """What an object's link keys point at. ``status``: "linked" (they resolve), "unlinked"
    (they point at no order or user, or at an order of another user), "none" (no keys)."""

    status: str
    order: Order | None = None
    user: Any | None = None
    problem: str = ""


NONE = Link(status="none")


def link_resolve(*, keys: dict[str, str]) -> Link:
    """Resolve link keys; the order, when there is one, comes back locked (call in a
    transaction): the same rule as the webhook handlers (``order_locked``)."""
    if not keys:
        return NONE
    if keys.get("order_id"):
        order, why = state.order_locked(metadata=keys)
        if order is None:
            return Link(status="unlinked", problem=why)
        return Link(status="linked", order=order, user=order.user)
    user = get_user_model().objects.filter(pk=_pk(keys["user_id"])).first()
    if user is None:
        return Link(
            status="unlinked", problem=f"metadata.user_id {keys['user_id']} matches no user"
        )
    return Link(status="linked", user=user)


def _pk(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def object_link(*, obj: dict[str, Any], write: bool = True) -> Link:
    """Resolve an object's link keys and, with ``write``, fill the link the shop keeps for it
    when it has none yet: the order's foreign key to a session, payment intent or
    subscription, or a customer's user. An existing link is never moved (an order's current
    session stays its current session); the object's row must be mirrored already."""
    link = link_resolve(keys=link_keys(obj))
    if not write or link.status != "linked":
        return link
    object_type = obj.get("object")
    field = ORDER_FIELDS.get(object_type)
    if field and link.order is not None:
        Order.objects.filter(pk=link.order.pk, **{f"{field}__isnull": True}).update(
            **{f"{field}_id": obj["id"]}
        )
    if object_type == "customer" and link.user is not None:
        Customer.objects.filter(id=obj["id"], subscriber__isnull=True).update(subscriber=link.user)
    return link
