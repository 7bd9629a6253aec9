"""Refunds: the order's refunded amount and status brought in line with its charge's refunds, as
Stripe has them now."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from billing.display import stripe_id
from orders.models import TRANSITIONS
from orders.services import state
from orders.services.state import S

logger = logging.getLogger(__name__)


def order_refund_sync(*, charge: dict[str, Any], source: str, event_id: str = "") -> str:
    """Bring the order's refunded amount and status in line with the charge's refunds.

    The order is the one whose own payment the charge is (``state.order_owning``): its
    metadata is not asked, so a charge pointed at another order changes only its own.
    """
    with transaction.atomic():
        order = state.order_owning(
            payment_intent_id=stripe_id(charge.get("payment_intent")),
            invoice_id=stripe_id(charge.get("invoice")),
        )
        if order is None:
            return f"charge {charge['id']} is no order's payment; recorded, nothing to do"
        refunded = int(charge.get("amount_refunded") or 0)
        if refunded == order.amount_refunded:
            return f"order {order.public_id}: refunds unchanged"
        order.amount_refunded = refunded
        full = bool(charge.get("refunded")) or refunded >= order.amount_total
        to_status = S.REFUNDED if full else S.PARTIALLY_REFUNDED
        note = f"charge {charge['id']}: {refunded} refunded of {charge.get('amount')}"
        if to_status == order.status or to_status not in TRANSITIONS[order.status]:
            state.note(order=order, source=source, event_id=event_id, note=note)
        else:
            state.transition(
                order=order, to_status=to_status, source=source, event_id=event_id, note=note
            )
        order.save(update_fields=["status", "amount_refunded", "updated_at"])
        return f"order {order.public_id} {order.status} ({refunded} refunded)"
