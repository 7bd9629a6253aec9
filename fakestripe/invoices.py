"""Invoices: opening and finalizing them, collecting them, and their lines and payments.

Collecting by card settles at once; a bank debit leaves the invoice `open` until the bank
answers (`bank.on_settled`).
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
from .payment_methods import resolve_payment_method
from .payments import charge_intent

NO_PAYMENT_METHOD = (
    "This customer has no attached payment source or default payment method. Please consider "
    "adding a default payment method. For more information, visit "
    "https://stripe.com/docs/billing/subscriptions/payment-methods-setting#payment-method-priority."
)


def _product_name(emu, price: dict[str, Any]) -> str:
    product = emu.store.get(price["product"]) or {}
    return product.get("name") or price["id"]


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


@route("GET", "/v1/invoice_payments")
def invoice_payments(emu, call) -> dict[str, Any]:
    check_params(call.params, {"invoice", "limit", "starting_after", "ending_before"})
    inv = fetch_live(emu, INVOICE, require(call.params, "invoice"), param="invoice")
    data = [emu.store.get(p) for p in inv.get("_payments", [])]
    return embedded_page(call, data, f"/v1/invoice_payments?invoice={inv['id']}")
