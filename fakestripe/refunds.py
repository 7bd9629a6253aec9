"""Refunds of successful charges, and refunds that settle or fail later.

Card refunds succeed at once, except with Stripe's asynchronous-refund test cards:
4000000000007726 (`pm_card_pendingRefund`) refunds start `pending` and succeed later
(`refund.updated`); 4000000000005126 (`pm_card_refundFail`) refunds start `succeeded` and fail
later (`refund.failed`, `failure_reason` `expired_or_canceled_card`). "Later" is
`ASYNC_REFUND_AFTER` seconds on the emulator's ticker (later.py), or at once through
`POST /_fake/scheduled/run`. `POST /_fake/refunds/{id}/fail` fails any pending or succeeded
refund, `/succeed` settles a pending one.

A failed refund gives its amount back, as in Stripe: a `refund_failure` balance transaction
(`failure_balance_transaction`), and the charge's `amount_refunded`/`refunded` go back down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import later, objects
from .api import (
    Resource,
    check_params,
    expand_paths,
    fetch_live,
    merge_metadata,
    register,
    render,
    route,
    text,
)
from .balance import record_balance
from .errors import invalid
from .events import diff, public
from .params import as_int
from .payments import CHARGE, PAYMENT_INTENT

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
FAILURE_REASONS = (
    "charge_for_pending_refund_disputed",
    "declined",
    "expired_or_canceled_card",
    "insufficient_funds",
    "lost_or_stolen_card",
    "merchant_request",
    "unknown",
)
ASYNC_REFUND_AFTER = 2.0  # seconds before a test card's refund settles or fails

# (emu, call, charge) -> None, run after a refund is created on the charge (disputes.py:
# an early fraud warning stops being actionable once its charge is fully refunded).
REFUNDED_HOOKS: list[Callable[[Any, Any, dict[str, Any]], None]] = []


def on_charge_refunded(hook: Callable) -> Callable:
    REFUNDED_HOOKS.append(hook)
    return hook


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
    dispute = emu.store.get(ch.get("_dispute") or "")
    if dispute is not None and not dispute["is_charge_refundable"]:
        raise invalid(
            f"Charge {ch['id']} has been charged back; cannot issue a refund.",
            code="charge_disputed",
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
    behaviour = _card_behaviour(emu, ch)
    if behaviour == "refund_pending":
        re.update(status="pending", pending_reason="processing")
    emu.store.put(re)
    if behaviour == "refund_pending":
        later.schedule(emu, re, "refund.succeed", ASYNC_REFUND_AFTER)
    elif behaviour == "refund_fail":
        later.schedule(
            emu, re, "refund.fail", ASYNC_REFUND_AFTER, failure_reason="expired_or_canceled_card"
        )
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
    for hook in REFUNDED_HOOKS:
        hook(emu, call, ch)
    return re


def _card_behaviour(emu, ch: dict[str, Any]) -> str | None:
    pm = emu.store.get(ch.get("payment_method") or "") or {}
    return (pm.get("_card") or {}).get("behaviour")


def _sync_charge(ch: dict[str, Any], re: dict[str, Any]) -> None:
    """The charge's embedded copy of the refund follows the refund."""
    ch["refunds"]["data"] = [
        public(re) if item.get("id") == re["id"] else item for item in ch["refunds"]["data"]
    ]


def _announce(emu, call, re: dict[str, Any], before: dict[str, Any]) -> None:
    previous = diff(before, public(re))
    emu.events.emit("refund.updated", re, call=call, previous=previous)
    emu.events.emit("charge.refund.updated", re, call=call, previous=previous)


def succeed(emu, call, re: dict[str, Any]) -> None:
    """A pending refund reaches the customer: `succeeded`, `refund.updated`."""
    if re["status"] != "pending":
        raise invalid(
            f"Refund {re['id']} has a status of {re['status']}; only a pending refund can succeed.",
            code="refund_unexpected_state",
        )
    later.cancel(emu, re)
    before = public(re)
    re["status"] = "succeeded"
    re.pop("pending_reason", None)
    emu.store.save(re)
    ch = emu.store.get(re["charge"])
    if ch is not None:
        _sync_charge(ch, re)
        emu.store.save(ch)
    _announce(emu, call, re, before)


def fail(emu, call, re: dict[str, Any], reason: str) -> None:
    """The issuer returns the refund: `failed` with `failure_reason`, the amount back on the
    balance and off the charge's `amount_refunded`; `refund.updated`, `refund.failed`."""
    if re["status"] not in ("pending", "succeeded"):
        raise invalid(
            f"Refund {re['id']} has a status of {re['status']}; only a pending or succeeded "
            "refund can fail.",
            code="refund_unexpected_state",
        )
    later.cancel(emu, re)
    before = public(re)
    txn = record_balance(
        emu,
        emu.new_id("txn"),
        re["amount"],
        re["currency"],
        re["id"],
        "refund_failure",
        "REFUND FAILURE",
    )
    re.pop("pending_reason", None)
    re.update(status="failed", failure_reason=reason, failure_balance_transaction=txn["id"])
    emu.store.save(re)
    ch = emu.store.get(re["charge"])
    if ch is not None:
        ch["amount_refunded"] = max(ch["amount_refunded"] - re["amount"], 0)
        ch["refunded"] = ch["amount_refunded"] >= ch["amount"]
        _sync_charge(ch, re)
        emu.store.save(ch)
    _announce(emu, call, re, before)
    emu.events.emit("refund.failed", re, call=call)


@later.action("refund.succeed")
def _succeed_later(emu, re: dict[str, Any], job: dict[str, Any]) -> None:
    if re["status"] == "pending":
        succeed(emu, None, re)


@later.action("refund.fail")
def _fail_later(emu, re: dict[str, Any], job: dict[str, Any]) -> None:
    if re["status"] in ("pending", "succeeded"):
        fail(emu, None, re, job.get("failure_reason") or "unknown")


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


@route("POST", "/v1/refunds/{re_id}/cancel")
def refund_cancel(emu, call, re_id: str) -> dict[str, Any]:
    """Only refunds awaiting customer action (`requires_action`: bank transfers, vouchers)
    can be canceled through the API; card refunds never are."""
    check_params(call.params, set())
    fetch_live(emu, REFUND, re_id)
    raise invalid("Canceling this refund is unsupported.")


@route("POST", "/_fake/refunds/{re_id}/fail")
def refund_fail_now(emu, call, re_id: str) -> dict[str, Any]:
    """The issuer returns a pending or succeeded refund (`failure_reason`, default
    `expired_or_canceled_card`)."""
    re = fetch_live(emu, REFUND, re_id)
    reason = text(call.params.get("failure_reason")) or "expired_or_canceled_card"
    if reason not in FAILURE_REASONS:
        raise invalid(
            f"Invalid failure_reason: must be one of {', '.join(FAILURE_REASONS)}",
            param="failure_reason",
        )
    fail(emu, None, re, reason)
    return render(emu, call, re, expand_paths(call.params))


@route("POST", "/_fake/refunds/{re_id}/succeed")
def refund_succeed_now(emu, call, re_id: str) -> dict[str, Any]:
    """A pending refund succeeds now."""
    re = fetch_live(emu, REFUND, re_id)
    succeed(emu, None, re)
    return render(emu, call, re, expand_paths(call.params))
