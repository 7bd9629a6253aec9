"""Payment outcomes: an order paid, failed, expired or refunded, decided from the latest
object Stripe has (re-fetched, never an event's snapshot).

Idempotency has two layers: the order row is locked (``select_for_update``) and its status
checked before any effect, so the webhook handler and the customer's return page can both call
``order_fulfil`` for the same session, in any order or at once, and the order is paid and
fulfilled once."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone
from djstripe.models import Customer, PaymentIntent, Session, Subscription

from orders.models import PAID_STATES, PAYABLE, TRANSITIONS, Order
from orders.services.state import S, _note, _transition

logger = logging.getLogger(__name__)


def _stripe_id(value: Any) -> str | None:
    """An id from a field that may be a string or an expanded object."""
    if isinstance(value, dict):
        return value.get("id")
    return value or None


def _order_locked(
    *, metadata: dict[str, Any] | None, fallback: dict[str, str | None] | None = None
) -> tuple[Order | None, str]:
    """The order an object links to, locked; or None and why (recorded, not raised).

    ``metadata.order_id`` is the link; ``fallback`` (e.g. ``{"payment_intent_id": "pi_..."}``)
    finds orders for objects Stripe created without our metadata (a renewal's charge). A
    ``user_id`` that disagrees with the order's user means the link was tampered with or
    copied by mistake; the order is left alone.
    """
    metadata = metadata or {}
    order_id = metadata.get("order_id")
    queryset = Order.objects.select_for_update()
    order = None
    if order_id:
        order = queryset.filter(public_id=order_id).first()
        if order is None:
            return None, f"metadata.order_id {order_id} matches no order"
    else:
        for field, value in (fallback or {}).items():
            if value:
                order = queryset.filter(**{field: value}).first()
                if order is not None:
                    break
        if order is None:
            return None, "no order link (no metadata.order_id); recorded, nothing to do"
    user_id = metadata.get("user_id")
    if user_id and str(order.user_id) != str(user_id):
        logger.error("order %s: metadata.user_id %s is not its user", order.public_id, user_id)
        return (
            None,
            f"metadata.user_id {user_id} does not match order {order.public_id}; left alone",
        )
    return order, ""


def _link_if_mirrored(order: Order, field: str, model, stripe_id: str | None) -> None:
    # Only rows the mirror has: the foreign keys are real (PROTECT), not dangling ids.
    current = getattr(order, f"{field}_id")
    if stripe_id and current != stripe_id and model.objects.filter(id=stripe_id).exists():
        setattr(order, f"{field}_id", stripe_id)


def _order_paid(*, order: Order, source: str, event_id: str, actor=None, note: str = "") -> None:
    """paid → fulfilled, both recorded. The goods are digital: fulfilling is granting access,
    which needs nothing beyond confirmed payment, so it follows at once in the same
    transaction (a shop shipping goods would fulfil later, from its own process)."""
    now = timezone.now()
    order.paid_at = now
    _transition(order=order, to_status=S.PAID, source=source, actor=actor, event_id=event_id,
                note=note)  # fmt: skip
    order.fulfilled_at = now
    _transition(order=order, to_status=S.FULFILLED, source=source, actor=actor,
                event_id=event_id, note="digital goods: fulfilled on payment")  # fmt: skip


def order_fulfil(*, session: dict[str, Any], source: str, event_id: str = "", actor=None) -> str:
    """Mark the session's order paid and fulfilled, once; return what happened, in words.

    ``session`` must be the latest state from Stripe (re-fetched, not an event snapshot). Called
    by the webhook handlers and the return page, possibly at the same moment: the order row
    lock and the status check make the second caller a no-op. Links (payment intent,
    subscription) are filled in by whichever caller has them, even after payment.
    """
    with transaction.atomic():
        order, why = _order_locked(
            metadata=session.get("metadata"),
            fallback={"public_id": session.get("client_reference_id")},
        )
        if order is None:
            return why
        if session.get("status") != "complete" or session.get("payment_status") not in (
            "paid",
            "no_payment_required",
        ):
            return (
                f"order {order.public_id}: session {session.get('status')}/"
                f"{session.get('payment_status')}, payment not confirmed yet"
            )
        _link_if_mirrored(order, "checkout_session", Session, session["id"])
        _link_if_mirrored(order, "customer", Customer, _stripe_id(session.get("customer")))
        _link_if_mirrored(
            order, "payment_intent", PaymentIntent, _stripe_id(session.get("payment_intent"))
        )
        _link_if_mirrored(
            order, "subscription", Subscription, _stripe_id(session.get("subscription"))
        )
        if order.status in PAID_STATES or order.status == S.CANCELED:
            order.save()
            return f"order {order.public_id} already {order.status}"
        if order.checkout_session_id and order.checkout_session_id != session["id"]:
            logger.error("order %s paid twice (sessions %s, %s)", order.public_id,
                         order.checkout_session_id, session["id"])  # fmt: skip
        _order_paid(order=order, source=source, event_id=event_id, actor=actor,
                    note=f"Checkout Session {session['id']} paid")  # fmt: skip
        order.save()
        return f"order {order.public_id} paid and fulfilled"


def order_payment_fail(*, session: dict[str, Any], source: str, event_id: str = "") -> str:
    """An asynchronous payment (e.g. a bank debit) failed; the order can be paid again."""
    return _session_ended(session=session, to_status=S.PAYMENT_FAILED, source=source,
                          event_id=event_id)  # fmt: skip


def order_expire(*, session: dict[str, Any], source: str, event_id: str = "") -> str:
    """The session expired unpaid; the order stays payable through a new session."""
    return _session_ended(session=session, to_status=S.EXPIRED, source=source, event_id=event_id)


def _session_ended(*, session: dict[str, Any], to_status: str, source: str, event_id: str) -> str:
    with transaction.atomic():
        order, why = _order_locked(
            metadata=session.get("metadata"),
            fallback={"public_id": session.get("client_reference_id")},
        )
        if order is None:
            return why
        # A replaced session ending later says nothing about the order's current one.
        if order.checkout_session_id != session["id"]:
            return f"order {order.public_id}: {session['id']} is not its current session"
        if to_status not in TRANSITIONS[order.status]:
            return f"order {order.public_id} is {order.status}; not {to_status}"
        _transition(order=order, to_status=to_status, source=source, event_id=event_id,
                    note=f"Checkout Session {session['id']} {session.get('status')}")  # fmt: skip
        order.save(update_fields=["status", "updated_at"])
        return f"order {order.public_id} {to_status}"


def order_refund_sync(*, charge: dict[str, Any], source: str, event_id: str = "") -> str:
    """Bring the order's refunded amount and status in line with the charge's refunds."""
    with transaction.atomic():
        order, why = _order_locked(
            metadata=charge.get("metadata"),
            fallback={"payment_intent_id": _stripe_id(charge.get("payment_intent"))},
        )
        if order is None:
            return why
        refunded = int(charge.get("amount_refunded") or 0)
        if refunded == order.amount_refunded:
            return f"order {order.public_id}: refunds unchanged"
        order.amount_refunded = refunded
        full = bool(charge.get("refunded")) or refunded >= order.amount_total
        to_status = S.REFUNDED if full else S.PARTIALLY_REFUNDED
        note = f"charge {charge['id']}: {refunded} refunded of {charge.get('amount')}"
        if to_status == order.status or to_status not in TRANSITIONS[order.status]:
            _note(order=order, source=source, event_id=event_id, note=note)
        else:
            _transition(order=order, to_status=to_status, source=source, event_id=event_id,
                        note=note)  # fmt: skip
        order.save(update_fields=["status", "amount_refunded", "updated_at"])
        return f"order {order.public_id} {order.status} ({refunded} refunded)"


def order_invoice_paid(*, invoice: dict[str, Any], source: str, event_id: str = "") -> str:
    """A subscription invoice was paid: the first one pays the order, later ones renew it."""
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    subscription_id = _stripe_id(parent.get("subscription") or invoice.get("subscription"))
    with transaction.atomic():
        order, why = _order_locked(
            metadata=parent.get("metadata") or invoice.get("metadata"),
            fallback={"subscription_id": subscription_id},
        )
        if order is None:
            return why
        _link_if_mirrored(order, "subscription", Subscription, subscription_id)
        _link_if_mirrored(order, "customer", Customer, _stripe_id(invoice.get("customer")))
        if order.status in PAYABLE:
            _order_paid(order=order, source=source, event_id=event_id,
                        note=f"first invoice {invoice['id']} paid")  # fmt: skip
            order.save()
            return f"order {order.public_id} paid and fulfilled"
        if invoice.get("billing_reason") == "subscription_cycle":
            _note(order=order, source=source, event_id=event_id,
                  note=f"renewal invoice {invoice['id']} paid ({invoice.get('amount_paid')})")  # fmt: skip
        order.save()
        return f"order {order.public_id}: invoice {invoice['id']} paid"
