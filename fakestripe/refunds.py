"""Refunds of successful charges."""

from __future__ import annotations

from typing import Any

from . import objects
from .api import (
    Resource,
    fetch_live,
    merge_metadata,
    register,
    text,
)
from .balance import record_balance
from .errors import invalid
from .events import public
from .params import as_int
from .payments import CHARGE, PAYMENT_INTENT

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def _money(amount: int, currency: str) -> str:
    if currency in objects.ZERO_DECIMAL:
        return f"¥{amount}" if currency == "jpy" else f"{amount} {currency.upper()}"
    return f"${amount / 100:.2f}"


def refund_create(emu, call, params: dict[str, Any]) -> dict[str, Any]:
    charge_id, pi_id = text(params.get("charge")), text(params.get("payment_intent"))
    if not charge_id and not pi_id:
        raise invalid(
            "One of the following params should be provided for this request: "
            "payment_intent or charge.",
            code="parameter_missing",
        )
    if pi_id:
        pi = fetch_live(emu, PAYMENT_INTENT, pi_id, param="payment_intent")
        if pi["status"] != "succeeded" or not pi["latest_charge"]:
            raise invalid(
                f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                param="payment_intent",
                code="charge_not_refundable",
            )
        if charge_id and charge_id != pi["latest_charge"]:
            raise invalid("The charge and payment_intent do not match.", param="charge")
        charge_id = pi["latest_charge"]
    ch = fetch_live(emu, CHARGE, charge_id, param="charge")
    if ch["status"] != "succeeded":
        raise invalid(
            f"Charge {ch['id']} has no successful payment to refund.",
            param="charge",
            code="charge_not_refundable",
        )
    remaining = ch["amount"] - ch["amount_refunded"]
    if remaining <= 0:
        raise invalid(
            f"Charge {ch['id']} has already been refunded.", code="charge_already_refunded"
        )
    amount = as_int(params, "amount", default=remaining)
    if amount < 1:
        raise invalid("Invalid positive integer", param="amount")
    if amount > remaining:
        raise invalid(
            f"Refund amount ({_money(amount, ch['currency'])}) is greater than unrefunded "
            f"amount on charge ({_money(remaining, ch['currency'])})",
            param="amount",
        )
    reason = text(params.get("reason"))
    if reason and reason not in REFUND_REASONS:
        raise invalid(f"Invalid reason: must be one of {', '.join(REFUND_REASONS)}", param="reason")
    re = objects.refund(
        emu.new_id("re"),
        emu.now(),
        ch=ch,
        amount=amount,
        reason=reason,
        metadata=merge_metadata({}, params.get("metadata", {})),
    )
    emu.store.put(re)
    record_balance(
        emu,
        re["balance_transaction"],
        -amount,
        re["currency"],
        re["id"],
        "refund",
        "REFUND FOR CHARGE",
    )
    before = {
        "amount_refunded": ch["amount_refunded"],
        "refunded": ch["refunded"],
        "refunds": public(ch["refunds"]),
    }
    ch["amount_refunded"] += amount
    ch["refunded"] = ch["amount_refunded"] >= ch["amount"]
    ch["refunds"]["data"].insert(0, public(re))
    ch["refunds"]["data"] = ch["refunds"]["data"][:10]
    emu.store.save(ch)
    previous = {k: v for k, v in before.items() if ch[k] != v}
    emu.events.emit("charge.refunded", ch, call=call, previous=previous)
    emu.events.emit("refund.created", re, call=call)
    return re


REFUND = register(
    Resource(
        object="refund",
        path="refunds",
        prefix="re",
        noun="refund",
        indexed=("charge", "payment_intent"),
        event="refund",
        create=refund_create,
        create_params=frozenset(
            {
                "charge",
                "payment_intent",
                "amount",
                "reason",
                "metadata",
                "instructions_email",
                "refund_application_fee",
                "reverse_transfer",
            }
        ),
        filters={
            "charge": lambda o, v: o["charge"] == v,
            "payment_intent": lambda o, v: o["payment_intent"] == v,
        },
        expandable=frozenset(
            {
                "charge",
                "payment_intent",
                "balance_transaction",
                "failure_balance_transaction",
                "source_transfer_reversal",
                "transfer_reversal",
            }
        ),
    )
)
