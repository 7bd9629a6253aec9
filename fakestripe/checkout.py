"""Checkout Sessions: the API resource, line items and expiry.

Paying a session is `checkout_complete.py`; the hosted payment page is `checkout_page.py`.
"""

from __future__ import annotations

from typing import Any

from . import objects
from .api import (
    Resource,
    background,
    check_params,
    embedded_page,
    expand_paths,
    fetch_live,
    merge_metadata,
    register,
    render,
    route,
    text,
)
from .catalog import PRICE, build_price
from .customers import CUSTOMER
from .errors import invalid
from .events import public
from .params import as_int, as_list

MIN_EXPIRY, MAX_EXPIRY = 30 * 60, 24 * 3600
CREATE_PARAMS = frozenset(
    {
        "mode",
        "line_items",
        "customer",
        "customer_email",
        "client_reference_id",
        "metadata",
        "payment_intent_data",
        "subscription_data",
        "success_url",
        "cancel_url",
        "expires_at",
        "customer_creation",
        "locale",
        "submit_type",
        "payment_method_types",
        "ui_mode",
        "allow_promotion_codes",
        "billing_address_collection",
        "currency",
        "automatic_tax",
        "phone_number_collection",
        "payment_method_collection",
    }
)


def _line_items(emu, params: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    entries = as_list(params, "line_items")
    if not entries:
        raise invalid(
            f"You must provide at least one line item in `{mode}` mode.",
            param="line_items",
            code="parameter_missing",
        )
    items = []
    for i, entry in enumerate(entries):
        name = f"line_items[{i}]"
        if not isinstance(entry, dict):
            raise invalid("Invalid hash", param=name)
        if entry.get("price"):
            price = fetch_live(emu, PRICE, entry["price"], param=f"{name}[price]")
        elif isinstance(entry.get("price_data"), dict):
            # Inline prices are created inactive and silently, as Stripe does.
            price = build_price(emu, entry["price_data"], param=f"{name}[price_data]", active=False)
            emu.store.put(price)
        else:
            raise invalid(f"You must specify either `price` or `price_data` in {name}.", param=name)
        quantity = as_int(entry, "quantity")
        if quantity is None:
            raise invalid(
                f"Quantity is required. Add `quantity` to `{name}`", param=f"{name}[quantity]"
            )
        if quantity < 1:
            raise invalid(
                "This value must be greater than or equal to 1.", param=f"{name}[quantity]"
            )
        if mode == "payment" and price["type"] == "recurring":
            raise invalid(
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
                param=f"{name}[price]",
            )
        product = emu.store.get(price["product"]) or {}
        items.append(
            objects.checkout_line_item(
                emu.new_id("li"),
                public(price),
                quantity,
                product.get("name", ""),
            )
        )
    if mode == "subscription" and not any(i["price"]["type"] == "recurring" for i in items):
        raise invalid(
            "You must provide at least one recurring price in `subscription` mode "
            "when using prices.",
            param="line_items",
        )
    if len({item["currency"] for item in items}) > 1:
        raise invalid("All line items must have the same currency.", param="line_items")
    return items


def session_create(emu, call, params: dict[str, Any]) -> dict[str, Any]:
    mode = params.get("mode")
    if not mode:
        raise invalid("Missing required param: mode.", param="mode", code="parameter_missing")
    if mode not in ("payment", "subscription"):
        raise invalid(f"fakestripe does not support `{mode}` mode.", param="mode")
    if params.get("customer") and params.get("customer_email"):
        raise invalid(
            "You may only specify one of these parameters: customer, customer_email.",
            param="customer_email",
        )
    if mode == "subscription" and params.get("payment_intent_data"):
        raise invalid(
            "You can not pass `payment_intent_data` in `subscription` mode.",
            param="payment_intent_data",
        )
    if mode == "payment" and params.get("subscription_data"):
        raise invalid(
            "You can not pass `subscription_data` in `payment` mode.", param="subscription_data"
        )
    if params.get("customer"):
        fetch_live(emu, CUSTOMER, params["customer"], param="customer")
    now = emu.now()
    expires_at = as_int(params, "expires_at", default=now + MAX_EXPIRY)
    if expires_at < now + MIN_EXPIRY:
        raise invalid(
            "The `expires_at` timestamp must be at least 30 minutes from Checkout "
            "Session creation.",
            param="expires_at",
        )
    if expires_at > now + MAX_EXPIRY:
        raise invalid(
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            param="expires_at",
        )
    items = _line_items(emu, params, mode)
    pi_data = params.get("payment_intent_data") or {}
    sub_data = params.get("subscription_data") or {}
    fields = {
        **params,
        "metadata": merge_metadata({}, params.get("metadata", {})),
        "customer_email": text(params.get("customer_email")),
    }
    session_id = emu.new_id("cs_test")
    cs = objects.checkout_session(
        session_id,
        now,
        mode=mode,
        currency=items[0]["currency"],
        amount=sum(i["amount_total"] for i in items),
        expires_at=expires_at,
        url=f"{call.base_url}/checkout/pay/{session_id}",
        params=fields,
    )
    cs["_line_items"] = items
    cs["_payment_intent_data"] = {
        "metadata": merge_metadata(
            {}, pi_data.get("metadata", {}), "payment_intent_data[metadata]"
        ),
        "description": text(pi_data.get("description")),
        "receipt_email": text(pi_data.get("receipt_email")),
    }
    cs["_subscription_data"] = {
        "metadata": merge_metadata({}, sub_data.get("metadata", {}), "subscription_data[metadata]"),
        "description": text(sub_data.get("description")),
    }
    emu.store.put(cs)
    open_sessions(emu)[cs["id"]] = expires_at
    return cs


def open_sessions(emu) -> dict[str, int]:
    """Open sessions by expiry, so the expiry sweep costs O(open), not O(all sessions)."""
    table = getattr(emu, "_open_sessions", None)
    if table is None:
        table = emu._open_sessions = {
            oid: emu.store.objects[oid]["expires_at"]
            for oid in emu.store.index("checkout.session").newest_first()
            if emu.store.objects[oid]["status"] == "open"
        }
    return table


def _session_items(emu, cs: dict[str, Any]) -> dict[str, Any]:
    items = cs.get("_line_items", [])
    return objects.list_object(
        public(items[:10]), f"/v1/checkout/sessions/{cs['id']}/line_items", len(items) > 10
    )


SESSION = register(
    Resource(
        object="checkout.session",
        path="checkout/sessions",
        prefix="cs",
        noun="checkout.session",
        indexed=("payment_intent", "subscription", "customer"),
        create=session_create,
        create_params=CREATE_PARAMS,
        filters={
            "payment_intent": lambda o, v: o["payment_intent"] == v,
            "subscription": lambda o, v: o["subscription"] == v,
            "customer": lambda o, v: o["customer"] == v,
            "status": lambda o, v: o["status"] == v,
            "payment_link": lambda o, v: o["payment_link"] == v,
            "customer_details": lambda o, v: (
                (o["customer_details"] or {}).get("email") == (v or {}).get("email")
            ),
        },
        expandable=frozenset(
            {
                "customer",
                "invoice",
                "payment_intent",
                "subscription",
                "payment_link",
                "setup_intent",
            }
        ),
        includable={"line_items": _session_items},
    )
)


@route("GET", "/v1/checkout/sessions/{cs_id}/line_items")
def session_line_items(emu, call, cs_id: str) -> dict[str, Any]:
    check_params(call.params, {"limit", "starting_after", "ending_before"})
    cs = fetch_live(emu, SESSION, cs_id)
    page = embedded_page(call, cs["_line_items"], f"/v1/checkout/sessions/{cs_id}/line_items")
    paths = expand_paths(call.params)
    return render(emu, call, page, paths) if paths else page


@route("POST", "/v1/checkout/sessions/{cs_id}/expire")
def session_expire(emu, call, cs_id: str) -> dict[str, Any]:
    check_params(call.params, set())
    cs = fetch_live(emu, SESSION, cs_id)
    if cs["status"] != "open":
        raise invalid(
            f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
            f'Session has a status of "{cs["status"]}".',
        )
    expire(emu, call, cs)
    return render(emu, call, cs, expand_paths(call.params))


def expire(emu, call, cs: dict[str, Any]) -> None:
    open_sessions(emu).pop(cs["id"], None)
    cs.update(status="expired", url=None)
    emu.store.save(cs)
    emu.events.emit("checkout.session.expired", cs, call=call)


@background
def expire_overdue(emu) -> None:
    """Expire open sessions past `expires_at` (Stripe does it in the background too)."""
    now = emu.now()
    with emu.store.lock:
        table = open_sessions(emu)
        for cs_id in [oid for oid, expires_at in table.items() if expires_at <= now]:
            cs = emu.store.get(cs_id)
            if cs is not None and cs["status"] == "open":
                expire(emu, None, cs)
            table.pop(cs_id, None)
