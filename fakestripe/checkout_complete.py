"""Completing a Checkout Session: paying it by card or by bank debit (ACH).

Completion follows Stripe: payment mode creates the payment intent and charge at payment
time (a declined card leaves the session open and the intent reusable); subscription mode
creates the customer, the subscription and its paid first invoice. Hosted payments are not
API requests, so their events carry `request.id` null.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from . import bank, objects
from .api import (
    expand_paths,
    fetch_live,
    render,
    route,
    text,
)
from .checkout import SESSION, expire_overdue, open_sessions
from .customers import customer_create
from .errors import StripeError, invalid
from .payment_methods import DECLINES, card_from_number, new_payment_method
from .payments import charge_intent
from .subscriptions import build_subscription, start


def _ensure_customer(emu, call, cs: dict[str, Any], email: str | None) -> dict[str, Any]:
    if cs["customer"]:
        return emu.store.get(cs["customer"])
    return customer_create(emu, call, {"email": email or cs["customer_email"]})


def complete(
    emu,
    call,
    cs: dict[str, Any],
    number: str,
    email: str | None = None,
    *,
    bank_account: str | None = None,
    settle_after: float = bank.DEFAULT_SETTLE_AFTER,
):
    """Pay the session with a test card, or by ACH Direct Debit when `bank_account` is given.

    Returns None, or the card error of a decline. A bank debit completes the session unpaid
    (payment_status `unpaid`, the intent `processing`); `_session_settled` finishes it.
    """
    if cs["status"] != "open":
        raise invalid(f"This Checkout Session is {cs['status']} and can no longer be paid.")
    if bank_account is not None:
        card, account = None, bank.bank_from_number(bank_account)
        bank.check_currency(cs["currency"])
    else:
        card, account = card_from_number(number), None
    if cs["mode"] == "payment":
        cus = None
        if cs["customer"] or cs["customer_creation"] == "always":
            cus = _ensure_customer(emu, call, cs, email)
        if account is not None:
            pm = _bank_payment_method(emu, call, cs, account, cus, email)
        else:
            pm = new_payment_method(emu, call, card)
        pi = emu.store.get(cs["payment_intent"]) if cs["payment_intent"] else None
        if pi is None:
            data = cs["_payment_intent_data"]
            pi = objects.payment_intent(
                emu.new_id("pi"),
                emu.now(),
                amount=cs["amount_total"],
                currency=cs["currency"],
                customer_id=cus["id"] if cus else None,
                description=data["description"],
                metadata=dict(data["metadata"]),
                receipt_email=data["receipt_email"],
            )
            emu.store.put(pi)
            cs["payment_intent"] = pi["id"]
            emu.store.save(cs)
            emu.events.emit("payment_intent.created", pi, call=call)
        if account is not None:
            pi["_checkout_session"] = cs["id"]
            bank.process(emu, call, pi, pm, settle_after=settle_after)
        else:
            error = charge_intent(emu, call, pi, pm)
            if error is not None:
                return error
        cs["customer"] = cus["id"] if cus else None
    else:
        if card is not None and card["decline"]:
            # Checkout confirms the card before it creates the subscription.
            return _decline_without_charge(card)
        cus = _ensure_customer(emu, call, cs, email)
        if account is not None:
            pm = _bank_payment_method(emu, call, cs, account, cus, email)
        else:
            pm = new_payment_method(emu, call, card, cus["id"])
        data = cs["_subscription_data"]
        lines = [(emu.store.get(i["price"]["id"]), i["quantity"]) for i in cs["_line_items"]]
        sub = build_subscription(
            emu,
            cus=cus,
            lines=lines,
            metadata=dict(data["metadata"]),
            description=data["description"],
        )
        sub["default_payment_method"] = pm["id"]
        sub["_checkout_session"] = cs["id"]
        error = start(emu, call, sub, pm, settle_after=settle_after)
        if error is not None:
            return error
        cs.update(customer=cus["id"], subscription=sub["id"], invoice=sub["latest_invoice"])
    open_sessions(emu).pop(cs["id"], None)
    # A finished session has no payment page any more: Stripe nulls its url.
    cs.update(
        status="complete",
        payment_status="unpaid" if account is not None else "paid",
        customer_details=objects.customer_details(
            email=email or cs["customer_email"] or (cus or {}).get("email"),
            name=(cus or {}).get("name"),
        ),
        url=None,
    )
    emu.store.save(cs)
    emu.events.emit("checkout.session.completed", cs, call=call)
    return None


def _bank_payment_method(emu, call, cs, account, cus, email) -> dict[str, Any]:
    """Checkout collects the account holder's name and email with the bank details."""
    name = (cus or {}).get("name") or "Jenny Rosen"
    email = email or cs["customer_email"] or (cus or {}).get("email")
    return bank.new_payment_method(
        emu, call, account, cus["id"] if cus else None, email=email, name=name
    )


@bank.on_settled
def _session_settled(emu, pi: dict[str, Any], succeeded: bool) -> None:
    """A bank debit behind a completed session has settled: tell the merchant, as Stripe does."""
    cs_id = pi.get("_checkout_session")
    if cs_id is None and pi.get("_invoice"):
        inv = emu.store.get(pi["_invoice"]) or {}
        sub_id = ((inv.get("parent") or {}).get("subscription_details") or {}).get("subscription")
        cs_id = (emu.store.get(sub_id or "") or {}).get("_checkout_session")
        if inv.get("billing_reason") != "subscription_create":
            cs_id = None  # a renewal's debit is the invoice's business, not the session's
    cs = emu.store.get(cs_id or "")
    if cs is None or cs["status"] != "complete" or cs["payment_status"] != "unpaid":
        return
    if succeeded:
        cs["payment_status"] = "paid"
        emu.store.save(cs)
        emu.events.emit("checkout.session.async_payment_succeeded", cs, call=None)
    else:
        emu.events.emit("checkout.session.async_payment_failed", cs, call=None)


def _decline_without_charge(card: dict[str, Any]) -> StripeError:
    code, message = DECLINES[card["decline"]]
    return StripeError(402, "card_error", message, code=code, decline_code=card["decline"])


def unrequested(call):
    """Hosted payments are not API requests: their events have a null request id."""
    return dataclasses.replace(call, request_id=None, idempotency_key=None)


@route("POST", "/_fake/checkout/sessions/{cs_id}/complete")
def fake_complete(emu, call, cs_id: str):
    cs = fetch_live(emu, SESSION, cs_id)
    expire_overdue(emu)
    error = complete(
        emu,
        unrequested(call),
        cs,
        str(call.params.get("card") or "4242424242424242"),
        text(call.params.get("email")),
        **bank_choice(call.params),
    )
    if error is not None:
        raise error
    return render(emu, call, cs, expand_paths(call.params))


def bank_choice(params: dict[str, Any]) -> dict[str, Any]:
    """`payment_method=us_bank_account` with `bank_account` (and `settle_after`) picks ACH."""
    method = params.get("payment_method") or "card"
    if method == "card":
        return {}
    if method != "us_bank_account":
        raise invalid("payment_method must be `card` or `us_bank_account`.", param="payment_method")
    return {
        "bank_account": str(params.get("bank_account") or ""),
        "settle_after": bank.settle_after_param(params),
    }
