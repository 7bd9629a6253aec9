"""What ``stripe_reconcile --fix`` does for each kind of finding, through the shop's own services:
each re-fetches the object (through the one mirror write path) and applies it as the webhook
handler would, so a repair is the same effect an event would have had."""

from __future__ import annotations

from billing import mirror, stripe_api
from orders.services import dispute_record as _dispute_record
from orders.services import (
    order_intent_record,
    order_invoice_paid,
    order_refund_sync,
    order_session_apply,
)
from orders.services import refund_record as _refund_record

SOURCE = "reconcile"


def session_fulfil(session_id: str) -> str:

    session = mirror.object_sync(object_type="checkout.session", stripe_id=session_id).obj
    return order_session_apply(session=session, source=SOURCE)


def invoice_paid(invoice_id: str) -> str:

    invoice = mirror.object_sync(object_type="invoice", stripe_id=invoice_id).obj
    return order_invoice_paid(invoice=invoice, source=SOURCE)


def intent_record(intent_id: str) -> str:

    intent = mirror.object_sync(object_type="payment_intent", stripe_id=intent_id).obj
    return order_intent_record(intent=intent, source=SOURCE)


def refunds_sync(charge_id: str) -> str:

    charge = mirror.object_sync(object_type="charge", stripe_id=charge_id).obj
    return order_refund_sync(charge=charge, source=SOURCE)


def refund_record(refund_id: str) -> str:
    refund = mirror.object_sync(object_type="refund", stripe_id=refund_id).obj
    return _refund_record(refund=refund, source=SOURCE)


def dispute_record(dispute_id: str) -> str:
    dispute = mirror.object_sync(object_type="dispute", stripe_id=dispute_id).obj
    return _dispute_record(dispute=dispute, source=SOURCE)


def keys_copy(object_type: str, stripe_id: str, keys: dict[str, str]) -> str:
    """Stripe first, then the mirror from Stripe's answer (through the one write path).

    Only the link keys are sent: Stripe merges metadata, so the object's other keys stay."""
    started = mirror.fetch_started()
    updated = stripe_api.update(
        object_type=object_type, stripe_id=stripe_id, params={"metadata": keys}
    )
    mirror.object_write(data=updated, started_at=started)
    return f"copied {', '.join(sorted(keys))}"
