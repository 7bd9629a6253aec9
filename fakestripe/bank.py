"""ACH Direct Debit (`us_bank_account`): a delayed-notification payment method.

Paying by bank account does not settle at once, as in Stripe: the payment intent goes to
`processing` with a `pending` charge, and `settle_after` seconds later (Stripe: up to four
business days) the debit either succeeds or is returned by the bank. Settlement runs on the
emulator's background ticker with no further request, or at once through
`POST /_fake/payment_intents/{pi_id}/settle`. The due time is kept on the payment intent
(`_settle_at`), so a journal-backed emulator settles what was pending when it restarts.

What settlement means for a Checkout Session or an invoice is theirs to say: they register
`on_settled` hooks, so this module knows nothing of them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from . import objects
from .api import background, expand_paths, fetch_live, render, route
from .errors import StripeError, invalid
from .events import public
from .payments import PAYMENT_INTENT, record_balance

DEFAULT_SETTLE_AFTER = 2.0
# Stripe's test account numbers (routing number 110000000): number -> (code, message) of the
# bank's return, or None for a debit that succeeds. Other well-formed numbers succeed.
TEST_ACCOUNTS: dict[str, tuple[str, str] | None] = {
    "000123456789": None,
    "000111111113": ("account_closed", "The customer's bank account has been closed."),
    "000111111116": ("no_account", "The customer's bank account could not be located."),
    "000222222227": (
        "insufficient_funds",
        "The customer's account has insufficient funds to cover this payment.",
    ),
    "000333333335": (
        "debit_not_authorized",
        "The customer has notified their bank that this payment was unauthorized.",
    ),
}

# (emu, payment intent, succeeded) -> None, run after the intent and charge have settled.
SETTLED_HOOKS: list[Callable[[Any, dict[str, Any], bool], None]] = []


def on_settled(hook: Callable[[Any, dict[str, Any], bool], None]) -> Callable:
    SETTLED_HOOKS.append(hook)
    return hook


def bank_from_number(raw: Any) -> dict[str, Any]:
    """A bank account record for a test account number (spaces and dashes allowed)."""
    number = "".join(ch for ch in str(raw or "") if ch not in " -")
    if not number.isdigit() or not 4 <= len(number) <= 17:
        raise invalid(
            "Your bank account number is incorrect.",
            param="us_bank_account[account_number]",
            code="account_number_invalid",
        )
    fingerprint = hashlib.sha256(b"ach:" + number.encode()).hexdigest()[:16]
    return {"last4": number[-4:], "fingerprint": fingerprint, "failure": TEST_ACCOUNTS.get(number)}


def settle_after_param(params: dict[str, Any]) -> float:
    raw = params.get("settle_after")
    if raw in (None, ""):
        return DEFAULT_SETTLE_AFTER
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = -1.0
    if not 0 <= value <= 86400:
        raise invalid(
            "settle_after must be a number of seconds from 0 to 86400.", param="settle_after"
        )
    return value


def new_payment_method(
    emu, call, bank: dict[str, Any], customer_id=None, *, email=None, name=None
) -> dict[str, Any]:
    pm = objects.bank_payment_method(
        emu.new_id("pm"), emu.now(), bank, customer_id, email=email, name=name
    )
    emu.store.put(pm)
    if customer_id:
        emu.events.emit("payment_method.attached", pm, call=call)
    return pm


def check_currency(currency: str | None) -> None:
    if currency != "usd":
        raise invalid(
            "The payment method `us_bank_account` only supports `usd` payments.",
            param="payment_method_types",
        )


def process(emu, call, pi: dict[str, Any], pm: dict[str, Any], *, settle_after: float) -> None:
    """Submit the debit: a pending charge, the intent `processing`, settlement scheduled."""
    check_currency(pi["currency"])
    pi["payment_method"] = pm["id"]
    if pm["customer"] is None and pi["customer"]:
        pm["customer"] = pi["customer"]
        emu.store.save(pm)
    if "us_bank_account" not in pi["payment_method_types"]:
        pi["payment_method_types"] = [*pi["payment_method_types"], "us_bank_account"]
        pi["payment_method_options"]["us_bank_account"] = {
            "mandate_options": {},
            "verification_method": "automatic",
        }
    ch = objects.charge(
        emu.new_id("ch"), emu.now(), pi=pi, pm=pm, base_url=call.base_url, failure=None,
        pending=True,
    )  # fmt: skip
    emu.store.put(ch)
    pi.update(
        status="processing",
        latest_charge=ch["id"],
        last_payment_error=None,
        _settle_at=time.time() + settle_after,
    )
    emu.store.save(pi)
    pending(emu)[pi["id"]] = pi["_settle_at"]
    emu.events.emit("charge.pending", ch, call=call)
    emu.events.emit("payment_intent.processing", pi, call=call)
    emu.wake()


def pending(emu) -> dict[str, float]:
    """Processing bank debits by due time, rebuilt from the store (the journal) on first use."""
    table = getattr(emu, "_pending_settlements", None)
    if table is None:
        table = emu._pending_settlements = {
            oid: emu.store.objects[oid]["_settle_at"]
            for oid in emu.store.index("payment_intent").newest_first()
            if emu.store.objects[oid].get("_settle_at") is not None
        }
    return table


def settle(emu, pi: dict[str, Any]) -> None:
    """The bank's answer: the debit succeeds, or is returned with the account's failure."""
    pending(emu).pop(pi["id"], None)
    pi.pop("_settle_at", None)
    ch = emu.store.get(pi["latest_charge"])
    pm = emu.store.get(ch["payment_method"])
    failure = pm["_bank"]["failure"]
    if failure is None:
        ch.update(status="succeeded", paid=True, balance_transaction="txn_" + ch["id"][3:])
        emu.store.save(ch)
        record_balance(
            emu,
            ch["balance_transaction"],
            ch["amount"],
            ch["currency"],
            ch["id"],
            "charge",
            ch["description"],
        )
        pi.update(status="succeeded", amount_received=pi["amount"])
        emu.store.save(pi)
        emu.events.emit("charge.succeeded", ch, call=None)
        emu.events.emit("payment_intent.succeeded", pi, call=None)
    else:
        code, message = failure
        ch.update(
            status="failed",
            paid=False,
            captured=False,
            amount_captured=0,
            receipt_url=None,
            failure_code=code,
            failure_message=message,
        )
        ch["outcome"].update(
            network_status="declined_by_network",
            reason=code,
            seller_message="The customer's bank returned the debit.",
            type="issuer_declined",
        )
        emu.store.save(ch)
        error = StripeError(400, "invalid_request_error", message, code=code, charge=ch["id"])
        pi.update(
            status="requires_payment_method",
            payment_method=None,
            last_payment_error={**error.body()["error"], "payment_method": public(pm)},
        )
        emu.store.save(pi)
        emu.events.emit("charge.failed", ch, call=None)
        emu.events.emit("payment_intent.payment_failed", pi, call=None)
    for hook in SETTLED_HOOKS:
        hook(emu, pi, failure is None)


@background
def settle_due(emu) -> float | None:
    """Settle every debit whose time has come; returns seconds until the next one is due."""
    with emu.store.lock:
        table = pending(emu)
        now = time.time()
        for pi_id in [oid for oid, due in table.items() if due <= now]:
            pi = emu.store.get(pi_id)
            if pi is not None and pi["status"] == "processing":
                settle(emu, pi)
            table.pop(pi_id, None)
        return min(table.values()) - now if table else None


@route("POST", "/_fake/payment_intents/{pi_id}/settle")
def settle_now(emu, call, pi_id: str) -> dict[str, Any]:
    """Settle a processing bank debit now instead of waiting for `settle_after`."""
    pi = fetch_live(emu, PAYMENT_INTENT, pi_id)
    if pi["status"] != "processing" or pi.get("_settle_at") is None:
        raise invalid(
            f"This PaymentIntent has no bank debit to settle: its status is {pi['status']}.",
            code="payment_intent_unexpected_state",
        )
    settle(emu, pi)
    return render(emu, call, pi, expand_paths(call.params))
