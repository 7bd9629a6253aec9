"""Disputes: chargebacks and inquiries, their evidence and outcome; early fraud warnings.

A dispute opens on a succeeded charge, from one of Stripe's dispute test cards when the
payment is made (events between `charge.succeeded` and `payment_intent.succeeded`, as in
Stripe) or from `POST /_fake/charges/{id}/dispute`:

- a chargeback (`4000000000000259` fraudulent, `4000000000002685` product not received):
  `needs_response`, the amount and a 15.00 dispute fee withdrawn (an `adjustment` balance
  transaction), the charge no longer refundable; `charge.dispute.created`,
  `charge.dispute.funds_withdrawn`;
- an inquiry (`4000000000001976`): `warning_needs_response`, no money moved, the charge still
  refundable; `charge.dispute.created`.

The charge becomes `disputed: true` (and stays so). Evidence submitted through
`POST /v1/disputes/{id}` (`submit` defaults to true; `submit=false` stages it) moves the
dispute to `under_review` (`warning_under_review`); Stripe's evidence strings in
`uncategorized_text` decide it `EVIDENCE_DECISION_AFTER` seconds later, as in test mode:
`winning_evidence` (won: funds reinstated), `losing_evidence` (lost; an inquiry closes as
`warning_closed`), `escalate_inquiry_evidence` (the inquiry becomes a chargeback).
`POST /v1/disputes/{id}/close` accepts the dispute (lost; an inquiry `warning_closed`).
`4000000000005423` gives the charge an early fraud warning (`radar.early_fraud_warning`).
"""

from __future__ import annotations

from typing import Any

from . import later, objects
from .api import (
    Resource,
    apply_update,
    check_params,
    expand_paths,
    fetch_live,
    register,
    render,
    route,
)
from .balance import record_balance
from .errors import invalid
from .events import diff, public
from .params import as_bool
from .payments import on_charge_succeeded
from .refunds import fail as fail_refund
from .refunds import on_charge_refunded

DISPUTE_FEE = 1500  # minor units, Stripe's US dispute fee
EVIDENCE_DECISION_AFTER = 2.0  # seconds before the test-mode evidence strings decide
EVIDENCE_MAX_CHARACTERS = 150_000
CLOSED = ("won", "lost", "warning_closed", "prevented")
REVIEW = {"needs_response": "under_review", "warning_needs_response": "warning_under_review"}
DECISIONS = {
    "winning_evidence": "won",
    "losing_evidence": "lost",
    "escalate_inquiry_evidence": "escalate",
}
REASONS = (
    "bank_cannot_process",
    "check_returned",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "noncompliant",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
)
# Visa's reason codes for Stripe's categories (an inquiry's fraud code is 10).
NETWORK_CODES = {
    "credit_not_processed": "13.6",
    "duplicate": "12.6",
    "fraudulent": "10.4",
    "product_not_received": "13.1",
    "product_unacceptable": "13.3",
    "subscription_canceled": "13.2",
    "unrecognized": "10.4",
}
# test card behaviour -> (reason, inquiry)
TEST_CARDS = {
    "dispute_fraudulent": ("fraudulent", False),
    "dispute_product_not_received": ("product_not_received", False),
    "dispute_inquiry": ("fraudulent", True),
}
FILE_FIELDS = frozenset(
    {
        "cancellation_policy",
        "customer_communication",
        "customer_signature",
        "duplicate_charge_documentation",
        "receipt",
        "refund_policy",
        "service_documentation",
        "shipping_documentation",
        "uncategorized_file",
    }
)


def _ids(emu, object_type: str, field: str, value: str) -> list[str]:
    """Ids of the objects whose indexed `field` is `value`, oldest first."""
    index = emu.store.index(object_type)
    return [index.ids[p] for p in index.matching(field, value) if index.ids[p]]


def _inquiry(dp: dict[str, Any]) -> bool:
    return dp["status"].startswith("warning_")


# -- money -----------------------------------------------------------------------------


def _withdraw(emu, dp: dict[str, Any]) -> None:
    txn = record_balance(
        emu,
        emu.new_id("txn"),
        -dp["amount"],
        dp["currency"],
        dp["id"],
        "adjustment",
        f"Chargeback withdrawal for {dp['charge']}",
        fee=DISPUTE_FEE,
        fee_description="Dispute fee",
        reporting_category="dispute",
    )
    dp["balance_transactions"].append(public(txn))


def _reinstate(emu, dp: dict[str, Any]) -> None:
    """Won: the disputed amount comes back (the dispute fee is kept, as Stripe records)."""
    txn = record_balance(
        emu,
        emu.new_id("txn"),
        dp["amount"],
        dp["currency"],
        dp["id"],
        "adjustment",
        f"Chargeback reversal for {dp['charge']}",
        reporting_category="dispute_reversal",
    )
    dp["balance_transactions"].append(public(txn))


# -- lifecycle -------------------------------------------------------------------------


def open_dispute(
    emu, call, ch: dict[str, Any], *, reason: str, amount: int, inquiry: bool
) -> dict[str, Any]:
    code = "10" if inquiry and reason == "fraudulent" else NETWORK_CODES.get(reason)
    dp = objects.dispute(
        emu.new_id("du"),
        emu.now(),
        ch=ch,
        amount=amount,
        reason=reason,
        inquiry=inquiry,
        network_reason_code=code,
    )
    if not inquiry:
        _withdraw(emu, dp)
    emu.store.put(dp)
    ch["disputed"] = True
    ch["_dispute"] = dp["id"]
    emu.store.save(ch)
    _stop_warnings(emu, call, ch)
    emu.events.emit("charge.dispute.created", dp, call=call)
    if not inquiry:
        emu.events.emit("charge.dispute.funds_withdrawn", dp, call=call)
        _fail_pending_refunds(emu, ch)
    return dp


def _fail_pending_refunds(emu, ch: dict[str, Any]) -> None:
    """A chargeback on a charge with a refund still pending fails the refund, as Stripe
    does, so that the customer is not paid twice."""
    for re_id in _ids(emu, "refund", "charge", ch["id"]):
        re = emu.store.get(re_id)
        if re is not None and re["status"] == "pending":
            fail_refund(emu, None, re, "charge_for_pending_refund_disputed")


def submit(emu, dp: dict[str, Any]) -> None:
    """Send the evidence to the bank: under review, one more submission."""
    dp["status"] = REVIEW[dp["status"]]
    details = dp["evidence_details"]
    details["submission_count"] += 1
    details["has_evidence"] = True
    decision = DECISIONS.get(dp["evidence"].get("uncategorized_text") or "")
    if decision == "escalate" and dp["status"] != "warning_under_review":
        decision = None  # only an inquiry escalates; for a chargeback it is plain text
    if decision:
        later.schedule(emu, dp, "dispute.decide", EVIDENCE_DECISION_AFTER, outcome=decision)


def close(emu, call, dp: dict[str, Any], status: str) -> None:
    """Decide the dispute: won (funds reinstated), lost, or an inquiry's warning_closed."""
    later.cancel(emu, dp)
    dp["status"] = status
    if status == "won":
        dp["is_charge_refundable"] = True
        if dp["balance_transactions"]:
            _reinstate(emu, dp)
    elif status == "lost":
        dp["is_charge_refundable"] = False
    emu.store.save(dp)
    if status == "won" and len(dp["balance_transactions"]) > 1:
        emu.events.emit("charge.dispute.funds_reinstated", dp, call=call)
    emu.events.emit("charge.dispute.closed", dp, call=call)


def escalate(emu, call, dp: dict[str, Any]) -> None:
    """The inquiry becomes a chargeback: `needs_response` again, the funds withdrawn."""
    later.cancel(emu, dp)
    before = public(dp)
    dp.update(status="needs_response", is_charge_refundable=False)
    dp["evidence_details"]["due_by"] = objects.disputes.due_by(emu.now())
    card = (dp.get("payment_method_details") or {}).get("card")
    if card is not None:
        card["case_type"] = "chargeback"
        card["network_reason_code"] = NETWORK_CODES.get(dp["reason"])
    _withdraw(emu, dp)
    emu.store.save(dp)
    emu.events.emit("charge.dispute.updated", dp, call=call, previous=diff(before, public(dp)))
    emu.events.emit("charge.dispute.funds_withdrawn", dp, call=call)
    ch = emu.store.get(dp["charge"])
    if ch is not None:
        _fail_pending_refunds(emu, ch)


@later.action("dispute.decide")
def _decide(emu, dp: dict[str, Any], job: dict[str, Any]) -> None:
    if dp["status"] in CLOSED:
        return
    outcome = job["outcome"]
    if outcome == "escalate":
        escalate(emu, None, dp)
    elif _inquiry(dp):
        close(emu, None, dp, "warning_closed")
    else:
        close(emu, None, dp, outcome)


# -- early fraud warnings ----------------------------------------------------------------


def _stop_warnings(emu, call, ch: dict[str, Any]) -> None:
    """An early fraud warning is actionable until its charge is disputed or fully
    refunded."""
    for efw_id in _ids(emu, "radar.early_fraud_warning", "charge", ch["id"]):
        efw = emu.store.get(efw_id)
        if efw is not None and efw["actionable"]:
            efw["actionable"] = False
            emu.store.save(efw)
            emu.events.emit(
                "radar.early_fraud_warning.updated", efw, call=call, previous={"actionable": True}
            )


@on_charge_refunded
def _refunded(emu, call, ch: dict[str, Any]) -> None:
    if ch["refunded"]:
        _stop_warnings(emu, call, ch)


@on_charge_succeeded
def _test_card(emu, call, ch: dict[str, Any], pm: dict[str, Any]) -> None:
    """What Stripe's dispute and fraud-warning test cards do once their payment succeeds."""
    behaviour = (pm.get("_card") or {}).get("behaviour")
    if behaviour in TEST_CARDS:
        reason, inquiry = TEST_CARDS[behaviour]
        open_dispute(emu, call, ch, reason=reason, amount=ch["amount"], inquiry=inquiry)
    elif behaviour == "early_fraud_warning":
        efw = objects.early_fraud_warning(
            emu.new_id("issfr"), emu.now(), ch=ch, fraud_type="made_with_stolen_card"
        )
        emu.store.put(efw)
        emu.events.emit("radar.early_fraud_warning.created", efw, call=call)


# -- API ---------------------------------------------------------------------------------


def _evidence(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid("Invalid hash", param="evidence")
    clean: dict[str, Any] = {}
    for name, item in value.items():
        if name == "enhanced_evidence":
            if not isinstance(item, dict):
                raise invalid("Invalid hash", param="evidence[enhanced_evidence]")
            clean[name] = item
        elif name not in objects.EVIDENCE_FIELDS:
            raise invalid(
                f"Received unknown parameter: evidence[{name}]",
                param=f"evidence[{name}]",
                code="parameter_unknown",
            )
        elif isinstance(item, dict | list):
            raise invalid("Invalid string", param=f"evidence[{name}]")
        else:
            clean[name] = None if item in (None, "") else str(item)
    return clean


def _update_hook(emu, call, dp: dict[str, Any], params: dict[str, Any]) -> None:
    """Stage evidence, and submit it unless `submit=false` (checked by the route first)."""
    if "evidence" in params:
        dp["evidence"].update(params["_evidence"])
        dp["evidence_details"]["has_evidence"] = any(
            v for k, v in dp["evidence"].items() if k != "enhanced_evidence"
        )
    if ("evidence" in params or "submit" in params) and as_bool(params, "submit", True):
        submit(emu, dp)


DISPUTE = register(
    Resource(
        object="dispute",
        path="disputes",
        prefix="du",
        noun="dispute",
        indexed=("charge", "payment_intent"),
        event="charge.dispute",
        updatable=False,  # POST /v1/disputes/{id} is dispute_update below
        update_hook=_update_hook,
        hook_params=frozenset({"evidence", "submit", "_evidence"}),
        filters={
            "charge": lambda o, v: o["charge"] == v,
            "payment_intent": lambda o, v: o["payment_intent"] == v,
        },
        expandable=frozenset(
            {"charge", "payment_intent", *(f"evidence.{name}" for name in FILE_FIELDS)}
        ),
    )
)

EARLY_FRAUD_WARNING = register(
    Resource(
        object="radar.early_fraud_warning",
        path="radar/early_fraud_warnings",
        prefix="issfr",
        noun="early fraud warning",
        indexed=("charge", "payment_intent"),
        updatable=False,
        filters={
            "charge": lambda o, v: o["charge"] == v,
            "payment_intent": lambda o, v: o["payment_intent"] == v,
        },
        expandable=frozenset({"charge", "payment_intent"}),
    )
)


def already_closed(dp: dict[str, Any]) -> None:
    if dp["status"] in CLOSED:
        raise invalid("This dispute is already closed")


@route("POST", "/v1/disputes/{du_id}")
def dispute_update(emu, call, du_id: str) -> dict[str, Any]:
    params = dict(call.params)
    check_params(params, {"evidence", "metadata", "submit"})
    dp = fetch_live(emu, DISPUTE, du_id)
    already_closed(dp)
    if "submit" in params:
        as_bool(params, "submit")
    if "evidence" in params or "submit" in params:
        if dp["status"] not in REVIEW:
            raise invalid(
                f"This dispute has a status of {dp['status']}: its evidence has been "
                "submitted and can no longer be changed."
            )
        if "evidence" in params:
            params["_evidence"] = _evidence(params["evidence"])
            merged = {**dp["evidence"], **params["_evidence"]}
            size = sum(len(v) for k, v in merged.items() if isinstance(v, str))
            if size > EVIDENCE_MAX_CHARACTERS:
                raise invalid(
                    "The combined character count of all evidence fields is limited to "
                    f"{EVIDENCE_MAX_CHARACTERS:,}.",
                    param="evidence",
                )
    apply_update(emu, call, DISPUTE, dp, params)
    return render(emu, call, dp, expand_paths(params))


@route("POST", "/v1/disputes/{du_id}/close")
def dispute_close(emu, call, du_id: str) -> dict[str, Any]:
    """Accept the dispute: a chargeback is lost, an inquiry closes without one."""
    check_params(call.params, set())
    dp = fetch_live(emu, DISPUTE, du_id)
    already_closed(dp)
    close(emu, call, dp, "warning_closed" if _inquiry(dp) else "lost")
    return render(emu, call, dp, expand_paths(call.params))
