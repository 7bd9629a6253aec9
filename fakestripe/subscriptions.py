"""Subscriptions (their invoices are `invoices.py`).

A new subscription starts `incomplete` with a finalized first invoice; paying that invoice
(at once when a payment method is known, or later through /pay or hosted checkout) makes it
`active`. There is no proration and no clock: `/_fake/subscriptions/{id}/renew` advances
one period on demand.
"""

from __future__ import annotations

from typing import Any

from . import objects
from .api import (
    Resource,
    boolean,
    check_params,
    embedded_page,
    expand_paths,
    fetch_live,
    merge_metadata,
    register,
    render,
    require,
    route,
    text,
)
from .bank import DEFAULT_SETTLE_AFTER
from .catalog import PRICE
from .customers import CUSTOMER
from .errors import StripeError, invalid
from .events import diff, public
from .invoices import (
    NO_PAYMENT_METHOD,
    announce_and_finalize,
    collect,
    default_payment_method,
    invoice_intent,
    open_invoice,
)
from .params import as_bool, as_int, as_list
from .payment_methods import resolve_payment_method


def check_recurring(emu, price_id: str, param: str) -> dict[str, Any]:
    price = fetch_live(emu, PRICE, price_id, param=param)
    if price["type"] != "recurring":
        raise invalid(
            "The price specified is set to `type=one_time` but this field only "
            "accepts prices with `type=recurring`.",
            param=param,
        )
    return price


def _period_for(price: dict[str, Any], start: int) -> tuple[int, int]:
    recurring = price["recurring"]
    return start, objects.add_interval(start, recurring["interval"], recurring["interval_count"])


def build_subscription(
    emu,
    *,
    cus,
    lines: list[tuple[dict, int]],
    metadata=None,
    description=None,
    cancel_at_period_end=False,
) -> dict[str, Any]:
    now = emu.now()
    currencies = {price["currency"] for price, _ in lines}
    if len(currencies) > 1:
        raise invalid("All prices on a subscription must have the same `currency`.", param="items")
    sub_id = emu.new_id("sub")
    items = [
        objects.subscription_item(
            emu.new_id("si"),
            now,
            sub_id=sub_id,
            p=public(price),
            quantity=quantity,
            period=_period_for(price, now),
        )
        for price, quantity in lines
    ]
    sub = objects.subscription(
        sub_id,
        now,
        customer_id=cus["id"],
        currency=currencies.pop(),
        items=items,
        metadata=metadata,
        description=description,
        cancel_at_period_end=cancel_at_period_end,
    )
    if cancel_at_period_end:
        sub["cancel_at"] = items[0]["current_period_end"]
    return sub


def _item_lines(emu, items: Any) -> list[tuple[dict, int]]:
    entries = as_list({"items": items}, "items")
    if not entries:
        raise invalid("Missing required param: items.", param="items", code="parameter_missing")
    lines = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise invalid("Invalid hash", param=f"items[{i}]")
        price = check_recurring(emu, require(entry, "price"), f"items[{i}][price]")
        lines.append((price, as_int(entry, "quantity", default=1)))
    return lines


def subscription_create(emu, call, params: dict[str, Any]) -> dict[str, Any]:
    cus = fetch_live(emu, CUSTOMER, require(params, "customer"), param="customer")
    lines = _item_lines(emu, params.get("items"))
    behavior = params.get("payment_behavior") or "allow_incomplete"
    pm_id = params.get("default_payment_method") or (
        (cus.get("invoice_settings") or {}).get("default_payment_method")
    )
    if not pm_id and behavior != "default_incomplete":
        raise invalid(NO_PAYMENT_METHOD, code="resource_missing")
    pm = (
        resolve_payment_method(
            emu, pm_id, customer_id=cus["id"], call=call, param="default_payment_method"
        )
        if pm_id
        else None
    )
    sub = build_subscription(
        emu,
        cus=cus,
        lines=lines,
        metadata=merge_metadata({}, params.get("metadata", {})),
        description=text(params.get("description")),
        cancel_at_period_end=as_bool(params, "cancel_at_period_end", False),
    )
    if params.get("default_payment_method") and pm:
        sub["default_payment_method"] = pm["id"]
    error = start(emu, call, sub, pm)
    if error is not None and behavior == "error_if_incomplete":
        raise error
    return sub


def start(
    emu, call, sub: dict[str, Any], pm: dict[str, Any] | None, *, settle_after=DEFAULT_SETTLE_AFTER
) -> StripeError | None:
    """Store the subscription, open its first invoice and try to collect it."""
    emu.store.put(sub)
    inv = open_invoice(emu, call, sub, "subscription_create")
    emu.events.emit("customer.subscription.created", sub, call=call)
    announce_and_finalize(emu, call, inv)
    if pm is None:
        invoice_intent(emu, call, inv)
        return None
    return collect(emu, call, inv, pm, settle_after=settle_after)


def subscription_update(emu, call, sub: dict[str, Any], params: dict[str, Any]) -> None:
    if sub["status"] == "canceled" and params.keys() - {
        "metadata",
        "cancellation_details",
        "expand",
    }:
        raise invalid(
            "A canceled subscription can only update its cancellation_details and metadata."
        )
    if "cancel_at_period_end" in params:
        flag = boolean(params["cancel_at_period_end"])
        sub["cancel_at_period_end"] = flag
        sub["cancel_at"] = sub["items"]["data"][0]["current_period_end"] if flag else None
        sub["canceled_at"] = emu.now() if flag else None
        sub["cancellation_details"]["reason"] = "cancellation_requested" if flag else None
    if isinstance(params.get("cancellation_details"), dict):
        for key in ("comment", "feedback"):
            if key in params["cancellation_details"]:
                sub["cancellation_details"][key] = text(params["cancellation_details"][key])
    if "default_payment_method" in params:
        pm_id = params["default_payment_method"]
        sub["default_payment_method"] = (
            resolve_payment_method(
                emu, pm_id, customer_id=sub["customer"], call=call, param="default_payment_method"
            )["id"]
            if pm_id
            else None
        )
    if "items" in params:
        _update_items(emu, sub, as_list(params, "items"))


def _update_items(emu, sub: dict[str, Any], entries: list) -> None:
    items = sub["items"]["data"]
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise invalid("Invalid hash", param=f"items[{i}]")
        if entry.get("id"):
            item = next((it for it in items if it["id"] == entry["id"]), None)
            if item is None:
                raise invalid(
                    f"No such subscription item: '{entry['id']}'",
                    param=f"items[{i}][id]",
                    code="resource_missing",
                )
            if boolean(entry.get("deleted", "false")):
                items.remove(item)
                continue
            if entry.get("price"):
                price = public(check_recurring(emu, entry["price"], f"items[{i}][price]"))
                item["price"], item["plan"] = price, objects.plan_from_price(price)
            if "quantity" in entry:
                item["quantity"] = as_int(entry, "quantity")
            if "metadata" in entry:
                item["metadata"] = merge_metadata(item["metadata"], entry["metadata"])
        else:
            price = public(check_recurring(emu, require(entry, "price"), f"items[{i}][price]"))
            first = items[0] if items else None
            period = (
                (first["current_period_start"], first["current_period_end"])
                if first
                else _period_for(price, emu.now())
            )
            items.append(
                objects.subscription_item(
                    emu.new_id("si"),
                    emu.now(),
                    sub_id=sub["id"],
                    p=price,
                    quantity=as_int(entry, "quantity", default=1),
                    period=period,
                )
            )
    if not items:
        raise invalid("A subscription must have at least one active plan.", param="items")


@route("DELETE", "/v1/subscriptions/{sub_id}")
def subscription_cancel(emu, call, sub_id: str) -> dict[str, Any]:
    check_params(call.params, {"invoice_now", "prorate", "cancellation_details"})
    sub = fetch_live(emu, SUBSCRIPTION, sub_id)
    if sub["status"] == "canceled":
        raise invalid(f"No such subscription: '{sub_id}'", code="resource_missing")
    cancel(emu, call, sub, params=call.params)
    return render(emu, call, sub, expand_paths(call.params))


def cancel(emu, call, sub: dict[str, Any], params: dict[str, Any] | None = None) -> None:
    now = emu.now()
    sub.update(status="canceled", canceled_at=sub["canceled_at"] or now, ended_at=now)
    sub["cancellation_details"]["reason"] = "cancellation_requested"
    details = (params or {}).get("cancellation_details")
    if isinstance(details, dict):
        for key in ("comment", "feedback"):
            if key in details:
                sub["cancellation_details"][key] = text(details[key])
    emu.store.save(sub)
    emu.events.emit("customer.subscription.deleted", sub, call=call)


def _status_filter(obj: dict[str, Any], params: dict[str, Any]) -> bool:
    # Stripe lists subscriptions that are not canceled unless a status is asked for.
    return "status" in params or obj["status"] != "canceled"


def _status_is(obj: dict[str, Any], value: Any) -> bool:
    if value == "all":
        return True
    if value == "ended":
        return obj["status"] == "canceled"
    return obj["status"] == value


SUBSCRIPTION = register(
    Resource(
        object="subscription",
        path="subscriptions",
        prefix="sub",
        noun="subscription",
        indexed=("customer",),
        event="customer.subscription",
        create=subscription_create,
        create_params=frozenset(
            {
                "customer",
                "items",
                "metadata",
                "description",
                "default_payment_method",
                "payment_behavior",
                "cancel_at_period_end",
                "collection_method",
                "proration_behavior",
                "payment_settings",
                "off_session",
            }
        ),
        update_params={"description": text},
        update_hook=subscription_update,
        hook_params=frozenset(
            {
                "cancel_at_period_end",
                "cancellation_details",
                "items",
                "default_payment_method",
                "proration_behavior",
                "payment_behavior",
            }
        ),
        filters={
            "customer": lambda o, v: o["customer"] == v,
            "status": _status_is,
            "price": lambda o, v: any(i["price"]["id"] == v for i in o["items"]["data"]),
            "collection_method": lambda o, v: o["collection_method"] == v,
        },
        default_filter=_status_filter,
        expandable=frozenset(
            {
                "customer",
                "latest_invoice",
                "default_payment_method",
                "default_source",
                "pending_setup_intent",
                "schedule",
                "test_clock",
                "application",
                "on_behalf_of",
            }
        ),
        search_fields={
            "status": lambda o: o["status"],
            "created": lambda o: o["created"],
            "customer": lambda o: o["customer"],
        },
    )
)


register(
    Resource(
        object="subscription_item",
        path=None,
        prefix="si",
        noun="subscription item",
        expandable=frozenset({"price.product"}),
    )
)


@route("GET", "/v1/subscription_items")
def subscription_items(emu, call) -> dict[str, Any]:
    """The items of one subscription (they live inside it, as the list's url says)."""
    check_params(call.params, {"subscription", "limit", "starting_after", "ending_before"})
    sub = fetch_live(emu, SUBSCRIPTION, require(call.params, "subscription"), param="subscription")
    url = f"/v1/subscription_items?subscription={sub['id']}"
    return embedded_page(call, sub["items"]["data"], url)


@route("POST", "/_fake/subscriptions/{sub_id}/renew")
def subscription_renew(emu, call, sub_id: str) -> dict[str, Any]:
    """Advance one billing period: a new paid invoice, or the end of a cancelling one."""
    sub = fetch_live(emu, SUBSCRIPTION, sub_id)
    if sub["status"] == "canceled":
        raise invalid("This subscription is canceled.")
    if sub["cancel_at_period_end"]:
        cancel(emu, call, sub)
        return render(emu, call, sub)
    before = public(sub)
    for item in sub["items"]["data"]:
        start, end = _period_for(item["price"], item["current_period_end"])
        item["current_period_start"], item["current_period_end"] = start, end
    inv = open_invoice(emu, call, sub, "subscription_cycle")
    announce_and_finalize(emu, call, inv)
    pm_id = default_payment_method(emu, sub)
    error = None
    if pm_id:
        error = collect(emu, call, inv, resolve_payment_method(emu, pm_id, call=call))
    if error is not None or not pm_id:
        sub["status"] = "past_due"
    emu.store.save(sub)
    emu.events.emit(
        "customer.subscription.updated", sub, call=call, previous=diff(before, public(sub))
    )
    return render(emu, call, sub)
