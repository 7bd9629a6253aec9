"""`/_fake/*` control of disputes: dispute any succeeded charge, and move a dispute along
(evidence submitted, inquiry escalated, decided) without waiting for the bank."""

from __future__ import annotations

from typing import Any

from .api import expand_paths, fetch_live, render, route, text
from .disputes import (
    CLOSED,
    DISPUTE,
    REASONS,
    REVIEW,
    already_closed,
    close,
    escalate,
    open_dispute,
    submit,
)
from .errors import invalid
from .events import diff, public
from .params import as_bool, as_int
from .payments import CHARGE


@route("POST", "/_fake/charges/{ch_id}/dispute")
def dispute_charge(emu, call, ch_id: str) -> dict[str, Any]:
    """Open a dispute on a succeeded charge: `reason` (default `fraudulent`), `amount`
    (default the charge's), `inquiry=true` for an inquiry instead of a chargeback."""
    ch = fetch_live(emu, CHARGE, ch_id)
    if ch["status"] != "succeeded":
        raise invalid(f"Charge {ch_id} has a status of {ch['status']}; only a succeeded "
                      "charge can be disputed.")  # fmt: skip
    current = emu.store.get(ch.get("_dispute") or "")
    if current is not None and current["status"] not in CLOSED:
        raise invalid(f"Charge {ch_id} already has an open dispute: {current['id']}.")
    reason = text(call.params.get("reason")) or "fraudulent"
    if reason not in REASONS:
        raise invalid(f"Invalid reason: must be one of {', '.join(REASONS)}", param="reason")
    amount = as_int(call.params, "amount", default=ch["amount"])
    if not 1 <= amount <= ch["amount"]:
        raise invalid(
            f"amount must be between 1 and the charge's amount ({ch['amount']}).",
            param="amount",
        )
    inquiry = as_bool(call.params, "inquiry", False)
    dp = open_dispute(emu, None, ch, reason=reason, amount=amount, inquiry=inquiry)
    return render(emu, call, dp, expand_paths(call.params))


@route("POST", "/_fake/disputes/{du_id}/submit")
def dispute_submit(emu, call, du_id: str) -> dict[str, Any]:
    """As if evidence had been submitted: under review (the evidence is left as it is)."""
    dp = fetch_live(emu, DISPUTE, du_id)
    if dp["status"] not in REVIEW:
        raise invalid(f"This dispute has a status of {dp['status']} and is not awaiting "
                      "a response.")  # fmt: skip
    before = public(dp)
    submit(emu, dp)
    emu.store.save(dp)
    emu.events.emit("charge.dispute.updated", dp, call=None, previous=diff(before, public(dp)))
    return render(emu, call, dp, expand_paths(call.params))


@route("POST", "/_fake/disputes/{du_id}/escalate")
def dispute_escalate(emu, call, du_id: str) -> dict[str, Any]:
    """The issuer turns an inquiry into a chargeback."""
    dp = fetch_live(emu, DISPUTE, du_id)
    if dp["status"] not in ("warning_needs_response", "warning_under_review"):
        raise invalid(f"Only an open inquiry can be escalated; this dispute is {dp['status']}.")
    escalate(emu, None, dp)
    return render(emu, call, dp, expand_paths(call.params))


@route("POST", "/_fake/disputes/{du_id}/close")
def dispute_decide(emu, call, du_id: str) -> dict[str, Any]:
    """The bank decides: `status` `won` or `lost` (a chargeback), `warning_closed` (an
    inquiry)."""
    dp = fetch_live(emu, DISPUTE, du_id)
    already_closed(dp)
    status = text(call.params.get("status"))
    allowed = ("warning_closed",) if dp["status"].startswith("warning_") else ("won", "lost")
    if status not in allowed:
        raise invalid(f"status must be one of {', '.join(allowed)} for this dispute.",
                      param="status")  # fmt: skip
    close(emu, None, dp, status)
    return render(emu, call, dp, expand_paths(call.params))
