"""Flagged payments handled by support: resolved with a note, in the order's history, the
audit log and the admin's History pages."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from billing.console import audit
from billing.models import AuditEntry
from orders.models import Order, OrderPayment
from orders.services import state

RESOLVE_PERMISSION = "orders.resolve_orderpayment"
# A payment's Stripe object type, by the field its id is in (the audit log names objects so).
_OBJECT_TYPES = {
    "checkout_session_id": "checkout.session",
    "invoice_id": "invoice",
    "payment_intent_id": "payment_intent",
}


class ResolveRefused(Exception):
    """Nothing was marked: the message says why."""


def _object_type(payment: OrderPayment) -> str:
    return next((t for f, t in _OBJECT_TYPES.items() if getattr(payment, f)), "payment_intent")


def order_payments_resolve(*, actor: AbstractBaseUser, payment_ids: list[int], note: str) -> int:
    """Support has handled these flagged payments (refunded, explained): mark them resolved,
    by whom, when and why (``note``, required), in each order's history, the audit log and
    both rows' admin History. Unflagged or already resolved ones are left as they are.
    Returns how many were marked. Needs ``orders.resolve_orderpayment``."""
    if not actor.has_perm(RESOLVE_PERMISSION):
        raise PermissionDenied("Marking payments resolved needs the resolve permission.")
    note = note.strip()
    if not note:
        raise ResolveRefused("Say how the payment was handled (refunded, explained to the "
                             "customer, …): the note goes in the order's history.")  # fmt: skip
    marked = 0
    with transaction.atomic():
        wanted = OrderPayment.objects.filter(pk__in=payment_ids).exclude(flag="")
        order_ids = sorted(set(wanted.values_list("order_id", flat=True)))
        # Orders locked in one order (by pk), as every payment writer locks its order first.
        orders = {
            o.pk: o
            for o in Order.objects.select_for_update().filter(pk__in=order_ids).order_by("pk")
        }
        for payment in wanted.filter(resolved_at=None).order_by("order_id", "pk"):
            order = orders[payment.order_id]
            payment.resolved_at, payment.resolved_by = timezone.now(), actor
            payment.save(update_fields=["resolved_at", "resolved_by", "updated_at"])
            what = f"flagged payment {payment.stripe_id} ({payment.get_flag_display()})"
            state.note(
                order=order,
                source="support console",
                actor=actor,
                note=f"{what} marked resolved: {note}",
            )
            audit.entry(
                actor=actor,
                action=AuditEntry.Action.PAYMENT_RESOLVE,
                object_type=_object_type(payment),
                stripe_id=payment.stripe_id,
                result=AuditEntry.Result.DONE,
                message=f"order {order.public_id}: {what} resolved: {note}"[:1000],
            )
            audit.log_entry(
                actor=actor, rows=[order, payment], message=f"Resolved {what}: {note}"[:200]
            )
            marked += 1
    return marked
