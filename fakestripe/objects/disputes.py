"""Disputes (chargebacks and inquiries) and Radar's early fraud warnings."""

from __future__ import annotations

import datetime as dt
from typing import Any

# The evidence hash's fields, in Stripe's order; the file fields hold File ids.
EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)

DUE_AFTER_DAYS = 7


def due_by(now: int) -> int:
    """The end (23:59:59 UTC) of the day seven days after `now`: Stripe's deadlines fall
    at the end of a UTC day; seven days is the short end of the usual 7 to 21."""
    day = dt.datetime.fromtimestamp(now, dt.UTC).date() + dt.timedelta(days=DUE_AFTER_DAYS)
    end = dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)
    return int(end.timestamp())


def evidence() -> dict[str, Any]:
    return {**dict.fromkeys(EVIDENCE_FIELDS), "enhanced_evidence": {}}


def dispute(
    oid: str,
    now: int,
    *,
    ch: dict[str, Any],
    amount: int,
    reason: str,
    inquiry: bool,
    network_reason_code: str | None,
) -> dict[str, Any]:
    """A new dispute: an inquiry (`warning_needs_response`, no money moved, the charge still
    refundable) or a chargeback (`needs_response`, funds withdrawn by the caller)."""
    card = (ch.get("payment_method_details") or {}).get("card")
    details = None
    if card is not None:
        details = {
            "card": {
                "brand": card["brand"],
                "case_type": "inquiry" if inquiry else "chargeback",
                "network": card.get("network") or card["brand"],
                "network_reason_code": network_reason_code,
            },
            "type": "card",
        }
    return {
        "id": oid,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": ch["id"],
        "created": now,
        "currency": ch["currency"],
        "enhanced_eligibility_types": [],
        "evidence": evidence(),
        "evidence_details": {
            "due_by": due_by(now),
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": inquiry,
        "livemode": False,
        "metadata": {},
        "payment_intent": ch["payment_intent"],
        "payment_method_details": details,
        "reason": reason,
        "status": "warning_needs_response" if inquiry else "needs_response",
    }


def early_fraud_warning(oid: str, now: int, *, ch: dict[str, Any], fraud_type: str) -> dict:
    return {
        "id": oid,
        "object": "radar.early_fraud_warning",
        "actionable": True,
        "charge": ch["id"],
        "created": now,
        "fraud_type": fraud_type,
        "livemode": False,
        "payment_intent": ch["payment_intent"],
    }
