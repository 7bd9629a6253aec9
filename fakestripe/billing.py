"""Subscriptions and their invoices.

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
from .bank import DEFAULT_SETTLE_AFTER, on_settled
from .bank import process as process_bank_debit
from .errors import StripeError, invalid
from .events import diff, public
from .params import as_bool, as_int, as_list
from .payments import charge_intent, resolve_payment_method
from .resources import CUSTOMER, PRICE

NO_PAYMENT_METHOD = (
    "This customer has no attached payment source or default payment method. Please consider "
    "adding a default payment method. For more information, visit "
    "https://stripe.com/docs/billing/subscriptions/payment-methods-setting#payment-method-priority."
)


def _product_name(emu, price: dict[str, Any]) -> str:
    product = emu.store.get(price["product"]) or {}
    return product.get("name") or price["id"]


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


def open_invoice(emu, call, sub: dict[str, Any], billing_reason: str) -> dict[str, Any]:
    """Create, announce and finalize the invoice for the subscription's current period."""
    cus = emu.store.get(sub["customer"])
    invoice_id = emu.new_id("in")
    first = sub["items"]["data"][0]
    period = (first["current_period_start"], first["current_period_end"])
    lines = [
        objects.invoice_line(
            emu.new_id("il"),
            invoice_id=invoice_id,
            sub=sub,
            item=item,
            period=period,
            description=f"{item['quantity']} x {_product_name(emu, item['price'])} "
            f"(at {item['price']['unit_amount']} / {item['price']['recurring']['interval']})",
        )
        for item in sub["items"]["data"]
    ]
    number = f"{cus['invoice_prefix']}-{cus['next_invoice_sequence']:04d}"
    cus["next_invoice_sequence"] += 1
    emu.store.save(cus)
    inv = objects.invoice(
        invoice_id,
        emu.now(),
        cus=cus,
        sub=sub,
        lines=lines,
        period=period,
        billing_reason=billing_reason,
        number=number,
        base_url=call.base_url,
    )
    emu.store.put(inv)
    sub["latest_invoice"] = inv["id"]
    emu.store.save(sub)
    return inv


def announce_and_finalize(emu, call, inv: dict[str, Any]) -> None:
    emu.events.emit("invoice.created", inv, call=call)
    now = emu.now()
    inv.update(
        status="open",
        number=inv["_number"],
        effective_at=now,
        # Stripe's shape (invoice.stripe.com/i/acct_.../...); the page is fakestripe.receipts.
        hosted_invoice_url=f"{inv['_base_url']}/i/{objects.ACCOUNT_ID}/{inv['id']}",
        invoice_pdf=f"{inv['_base_url']}/i/{objects.ACCOUNT_ID}/{inv['id']}/pdf",
    )
    inv["status_transitions"]["finalized_at"] = now
    emu.store.save(inv)
    emu.events.emit("invoice.finalized", inv, call=call)


def invoice_intent(emu, call, inv: dict[str, Any]) -> dict[str, Any]:
    """The payment intent that collects the invoice (one per invoice, made on first need)."""
    pi_id = inv.get("_payment_intent")
    if pi_id:
        return emu.store.get(pi_id)
    pi = objects.payment_intent(
        emu.new_id("pi"),
        emu.now(),
        amount=inv["amount_due"],
        currency=inv["currency"],
        customer_id=inv["customer"],
        description="Subscription creation"
        if inv["billing_reason"] == "subscription_create"
        else "Subscription update",
    )
    emu.store.put(pi)
    emu.events.emit("payment_intent.created", pi, call=call)
    payment = objects.invoice_payment(emu.new_id("inpay"), emu.now(), inv=inv, pi_id=pi["id"])
    emu.store.put(payment, listed=False)
    inv["_payment_intent"] = pi["id"]
    inv["_payments"] = [payment["id"]]
    emu.store.save(inv)
    return pi


def collect(
    emu, call, inv: dict[str, Any], pm: dict[str, Any], *, settle_after=DEFAULT_SETTLE_AFTER
) -> StripeError | None:
    """Charge the invoice with `pm`; on success mark it paid and activate its subscription.

    A bank debit leaves the invoice open (and a new subscription incomplete) while it is
    processing; `_invoice_settled` finishes the job when the bank answers.
    """
    pi = invoice_intent(emu, call, inv)
    if pm["type"] == "us_bank_account":
        pi["_invoice"] = inv["id"]
        process_bank_debit(emu, call, pi, pm, settle_after=settle_after)
        inv["attempted"] = True
        inv["attempt_count"] += 1
        emu.store.save(inv)
        return None
    error = charge_intent(emu, call, pi, pm)
    before = public(inv)
    inv["attempted"] = True
    inv["attempt_count"] += 1
    if error is not None:
        emu.store.save(inv)
        emu.events.emit("invoice.payment_failed", inv, call=call)
        return error
    mark_paid(emu, call, inv, pm, before)
    return None


@on_settled
def _invoice_settled(emu, pi: dict[str, Any], succeeded: bool) -> None:
    inv = emu.store.get(pi.get("_invoice") or "")
    if inv is None or inv["status"] != "open":
        return
    if succeeded:
        pm = emu.store.get(emu.store.get(pi["latest_charge"])["payment_method"])
        mark_paid(emu, None, inv, pm, public(inv))
    else:
        emu.events.emit("invoice.payment_failed", inv, call=None)


def mark_paid(emu, call, inv: dict[str, Any], pm: dict[str, Any], before: dict) -> None:
    """The invoice paid (`before` is its public shape before this attempt), and its
    subscription active."""
    now = emu.now()
    inv.update(status="paid", amount_paid=inv["amount_due"], amount_remaining=0)
    inv["status_transitions"]["paid_at"] = now
    for payment_id in inv.get("_payments", []):
        payment = emu.store.get(payment_id)
        payment.update(status="paid", amount_paid=inv["amount_due"])
        payment["status_transitions"]["paid_at"] = now
        emu.store.save(payment)
    emu.store.save(inv)
    emu.events.emit("invoice.updated", inv, call=call, previous=diff(before, public(inv)))
    emu.events.emit("invoice.paid", inv, call=call)
    emu.events.emit("invoice.payment_succeeded", inv, call=call)
    sub_id = inv["parent"]["subscription_details"]["subscription"]
    sub = emu.store.get(sub_id)
    if sub is not None and sub["status"] in ("incomplete", "past_due"):
        sub_before = public(sub)
        sub["status"] = "active"
        if not sub["default_payment_method"]:
            sub["_payment_method"] = pm["id"]
        emu.store.save(sub)
        emu.events.emit(
            "customer.subscription.updated", sub, call=call, previous=diff(sub_before, public(sub))
        )


def default_payment_method(emu, sub: dict[str, Any]) -> str | None:
    cus = emu.store.get(sub["customer"]) or {}
    return (
        sub.get("default_payment_method")
        or sub.get("_payment_method")
        or (cus.get("invoice_settings") or {}).get("default_payment_method")
    )


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


# -- invoices ---------------------------------------------------------------------------


def _invoice_subscription(obj: dict[str, Any]) -> str | None:
    return ((obj.get("parent") or {}).get("subscription_details") or {}).get("subscription")


def _invoice_payments(emu, inv: dict[str, Any]) -> dict[str, Any]:
    data = [public(emu.store.get(p)) for p in inv.get("_payments", [])]
    return objects.list_object(data, f"/v1/invoice_payments?invoice={inv['id']}")


@route("POST", "/v1/invoices/{in_id}/pay")
def invoice_pay(emu, call, in_id: str) -> dict[str, Any]:
    check_params(
        call.params,
        {"payment_method", "paid_out_of_band", "off_session", "source", "forgive", "mandate"},
    )
    inv = fetch_live(emu, INVOICE, in_id)
    if inv["status"] == "paid":
        raise invalid("Invoice is already paid", code="invoice_already_paid")
    if inv["status"] not in ("open", "draft"):
        raise invalid(
            f"You can only pay an invoice that is open. This invoice is {inv['status']}.",
            code="invoice_not_editable",
        )
    if inv["status"] == "draft":
        announce_and_finalize(emu, call, inv)
    sub = emu.store.get(_invoice_subscription(inv) or "") or {}
    pm_id = call.params.get("payment_method") or (default_payment_method(emu, sub) if sub else None)
    if not pm_id:
        raise invalid(NO_PAYMENT_METHOD, code="resource_missing")
    pm = resolve_payment_method(emu, pm_id, customer_id=inv["customer"], call=call)
    error = collect(emu, call, inv, pm)
    if error is not None:
        raise error
    return render(emu, call, inv, expand_paths(call.params))


@route("GET", "/v1/invoices/{in_id}/lines")
def invoice_lines(emu, call, in_id: str) -> dict[str, Any]:
    check_params(call.params, {"limit", "starting_after", "ending_before"})
    inv = fetch_live(emu, INVOICE, in_id)
    return embedded_page(call, inv["lines"]["data"], f"/v1/invoices/{in_id}/lines")


INVOICE = register(
    Resource(
        object="invoice",
        path="invoices",
        prefix="in",
        noun="invoice",
        indexed=("customer",),
        event="invoice",
        update_params={"description": text, "footer": text, "auto_advance": boolean},
        filters={
            "customer": lambda o, v: o["customer"] == v,
            "subscription": lambda o, v: _invoice_subscription(o) == v,
            "status": lambda o, v: o["status"] == v,
            "collection_method": lambda o, v: o["collection_method"] == v,
        },
        expandable=frozenset(
            {
                "customer",
                "default_payment_method",
                "default_source",
                "latest_revision",
                "on_behalf_of",
                "test_clock",
                "application",
                "parent.subscription_details.subscription",
                "subscription",
            }
        ),
        includable={"payments": _invoice_payments},
        search_fields={
            "customer": lambda o: o["customer"],
            "status": lambda o: o["status"],
            "subscription": _invoice_subscription,
            "total": lambda o: o["total"],
            "currency": lambda o: o["currency"],
            "number": lambda o: o["number"],
            "created": lambda o: o["created"],
        },
    )
)

# Objects that only live inside others still need expand rules.
register(
    Resource(
        object="subscription_item",
        path=None,
        prefix="si",
        noun="subscription item",
        expandable=frozenset({"price.product"}),
    )
)
register(
    Resource(
        object="line_item",
        path=None,
        prefix="il",
        noun="line item",
        expandable=frozenset({"pricing.price_details.price", "subscription"}),
    )
)
register(
    Resource(
        object="invoice_payment",
        path=None,
        prefix="inpay",
        noun="invoice payment",
        expandable=frozenset({"invoice", "payment.payment_intent", "payment.charge"}),
    )
)


@route("GET", "/v1/subscription_items")
def subscription_items(emu, call) -> dict[str, Any]:
    """The items of one subscription (they live inside it, as the list's url says)."""
    check_params(call.params, {"subscription", "limit", "starting_after", "ending_before"})
    sub = fetch_live(emu, SUBSCRIPTION, require(call.params, "subscription"), param="subscription")
    url = f"/v1/subscription_items?subscription={sub['id']}"
    return embedded_page(call, sub["items"]["data"], url)


@route("GET", "/v1/invoice_payments")
def invoice_payments(emu, call) -> dict[str, Any]:
    check_params(call.params, {"invoice", "limit", "starting_after", "ending_before"})
    inv = fetch_live(emu, INVOICE, require(call.params, "invoice"), param="invoice")
    data = [emu.store.get(p) for p in inv.get("_payments", [])]
    return embedded_page(call, data, f"/v1/invoice_payments?invoice={inv['id']}")


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
