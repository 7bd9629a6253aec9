"""The order's state: every status change goes through ``transition``, recorded in history with
who or what caused it (``record``; a fact that changes no status: ``note``); the order an
object's link keys name, locked (``order_locked``); the order paid (``order_paid``). The
helpers every service of the shop shares, in one place."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from orders import receipts
from orders.models import TRANSITIONS, Order, OrderHistory, OrderPayment

logger = logging.getLogger(__name__)

S = Order.Status
K = OrderHistory.Kind


class CheckoutError(Exception):
    """The purchase cannot go ahead; ``message`` is for the customer, ``order`` (when set) is
    the order to show them instead."""

    def __init__(self, message: str, *, order: Order | None = None):
        super().__init__(message)
        self.message = message
        self.order = order


class TransitionRefused(Exception):
    def __init__(self, order: Order, to_status: str):
        super().__init__(f"order {order.public_id}: {order.status} → {to_status} is not allowed")
        self.order = order
        self.to_status = to_status


# --- State machine ------------------------------------------------------------------------

# What a status change tells the customer when the caller names nothing more precise.
KIND_FOR_STATUS: dict[str, str] = {
    S.AWAITING_PAYMENT: K.PAYMENT_RESTARTED,
    S.PAYMENT_PROCESSING: K.PAYMENT_PROCESSING,
    S.PAID: K.PAID,
    S.FULFILLED: K.FULFILLED,
    S.PAYMENT_FAILED: K.PAYMENT_FAILED,
    S.EXPIRED: K.EXPIRED,
    S.CANCELED: K.CANCELED,
    S.REFUNDED: K.REFUNDED,
    S.PARTIALLY_REFUNDED: K.PARTIALLY_REFUNDED,
}


def record(
    *,
    order: Order,
    to_status: str,
    source: str,
    actor: AbstractBaseUser | None = None,
    event_id: str = "",
    note: str = "",
    from_status: str | None = None,
    kind: str | None = None,
    data: dict | None = None,
) -> None:
    """One history entry. ``kind`` defaults from the change: a new order is "placed", a status
    change says what the status means, a note without a kind stays internal (support only)."""
    from_status = order.status if from_status is None else from_status
    if kind is None:
        if not from_status:
            kind = K.PLACED
        elif from_status != to_status:
            kind = KIND_FOR_STATUS.get(to_status, "")
        else:
            kind = ""
    OrderHistory.objects.create(
        order=order,
        from_status=from_status,
        to_status=to_status,
        source=source,
        actor=actor if actor is not None and actor.is_authenticated else None,
        event_id=event_id,
        note=note,
        kind=kind,
        data=data or {},
    )


def transition(
    *,
    order: Order,
    to_status: str,
    source: str,
    actor: AbstractBaseUser | None = None,
    event_id: str = "",
    note: str = "",
    kind: str | None = None,
) -> None:
    """Change the status of a locked order in memory and record it; the caller saves."""
    if to_status not in TRANSITIONS[order.status]:
        raise TransitionRefused(order, to_status)
    record(
        order=order,
        to_status=to_status,
        source=source,
        actor=actor,
        event_id=event_id,
        note=note,
        kind=kind,
    )
    order.status = to_status


def order_transition(
    *,
    order: Order,
    to_status: str,
    source: str,
    actor: AbstractBaseUser | None = None,
    event_id: str = "",
    note: str = "",
) -> Order:
    """Move an order to ``to_status`` if the state machine allows it; raise ``TransitionRefused``."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        transition(
            order=locked,
            to_status=to_status,
            source=source,
            actor=actor,
            event_id=event_id,
            note=note,
        )
        locked.save(update_fields=["status", "updated_at"])
    return locked


def note(
    *,
    order: Order,
    source: str,
    note: str,
    event_id: str = "",
    actor=None,
    kind: str = "",
    data: dict | None = None,
) -> None:
    """A fact worth keeping that does not change the status (a renewal, a cancellation request);
    shown to the customer only with a ``kind``."""
    record(
        order=order,
        to_status=order.status,
        source=source,
        actor=actor,
        event_id=event_id,
        note=note,
        kind=kind,
        data=data,
    )


# --- The order an object names, locked ----------------------------------------------------


def order_find(
    *, metadata: dict[str, Any] | None, fallback: dict[str, str | None] | None = None
) -> tuple[Order | None, str, str]:
    """The order an object links to, locked; or None and why (recorded, not raised); and a
    reason to distrust the link ("" when there is none).

    ``metadata.order_id`` is the link; ``fallback`` (e.g. ``{"payment_intent_id": "pi_..."}``)
    finds orders for objects Stripe created without our metadata (a renewal's charge, a
    Payment Link's ``client_reference_id``). A ``user_id`` that disagrees with the order's user
    means the link was tampered with or copied by mistake: the order is returned with that
    reason, so a payment can be recorded against it, flagged, and nothing else done.
    """
    metadata = metadata or {}
    order_id = metadata.get("order_id")
    queryset = Order.objects.select_for_update()
    order = None
    if order_id:
        order = queryset.filter(public_id=order_id).first()
        if order is None:
            return None, f"metadata.order_id {order_id} matches no order", ""
    else:
        for field, value in (fallback or {}).items():
            if value:
                order = queryset.filter(**{field: value}).first()
                if order is not None:
                    break
        if order is None:
            return None, "no order link (no metadata.order_id); recorded, nothing to do", ""
    user_id = metadata.get("user_id")
    if user_id and str(order.user_id) != str(user_id):
        logger.error("order %s: metadata.user_id %s is not its user", order.public_id, user_id)
        return order, "", f"metadata.user_id {user_id} is not the order's user"
    return order, "", ""


def order_locked(
    *, metadata: dict[str, Any] | None, fallback: dict[str, str | None] | None = None
) -> tuple[Order | None, str]:
    """``order_find`` for effects that are not payments: a distrusted link is left alone."""
    order, why, distrust = order_find(metadata=metadata, fallback=fallback)
    if order is not None and distrust:
        return None, f"{distrust}; order {order.public_id} left alone"
    return order, why


# Stripe ids an order may link to itself (its current session, intent, subscription).
_ORDER_LINKS = ("checkout_session_id", "payment_intent_id", "subscription_id")


def order_owns(order: Order, **ids: str | None) -> bool:
    """The one ownership rule: a Stripe object acts on ``order`` only when it is the order's.

    ``ids`` are the object's own Stripe ids by payment field (``checkout_session_id``,
    ``payment_intent_id``, ``invoice_id``, ``subscription_id``). It is the order's when the
    order links one of them, or one of the order's payments that was not flagged as
    unexpected recorded it: metadata naming the order is never enough (anyone with the API
    key or the link permission can write it). Payments, subscriptions, invoices and refunds
    all decide with this.
    """
    links, recorded = _owned(ids)
    if any(getattr(order, field) == value for field, value in links.items()):
        return True
    return recorded is not None and order.payments.filter(recorded).exists()


def order_owning(**ids: str | None) -> Order | None:
    """The order that owns the object with these ids (``order_owns``), locked; or None."""
    links, recorded = _owned(ids)
    if recorded is None:
        return None
    order_id = OrderPayment.objects.filter(recorded).values_list("order_id", flat=True).first()
    queryset = Order.objects.select_for_update()
    if order_id is not None:
        return queryset.get(pk=order_id)
    for field, value in links.items():
        if (order := queryset.filter(**{field: value}).first()) is not None:
            return order
    return None


def _owned(ids: dict[str, str | None]) -> tuple[dict[str, str], Q | None]:
    """The ids an order may link itself, and a filter for payments recording any of them."""
    given = {field: value for field, value in ids.items() if value}
    if not given:
        return {}, None
    recorded = Q()
    for field, value in given.items():
        recorded |= Q(**{field: value})
    recorded &= ~Q(flag=OrderPayment.Flag.UNEXPECTED)
    return {f: v for f, v in given.items() if f in _ORDER_LINKS}, recorded


def link_if_mirrored(order: Order, field: str, model, stripe_id: str | None) -> None:
    # Only rows the mirror has: the foreign keys are real (PROTECT), not dangling ids.
    current = getattr(order, f"{field}_id")
    if stripe_id and current != stripe_id and model.objects.filter(id=stripe_id).exists():
        setattr(order, f"{field}_id", stripe_id)


def order_paid(*, order: Order, source: str, event_id: str, actor=None, note: str = "") -> None:
    """paid → fulfilled, both recorded. The goods are digital: fulfilling is granting access,
    which needs nothing beyond confirmed payment, so it follows at once in the same
    transaction (a shop shipping goods would fulfil later, from its own process)."""
    now = timezone.now()
    if order.status == S.EXPIRED:
        # Its own session paid after the order was marked expired (events out of order).
        transition(
            order=order,
            to_status=S.AWAITING_PAYMENT,
            source=source,
            actor=actor,
            event_id=event_id,
            note=note,
            kind="",
        )
    order.paid_at = now
    transition(
        order=order, to_status=S.PAID, source=source, actor=actor, event_id=event_id, note=note
    )
    order.fulfilled_at = now
    transition(
        order=order,
        to_status=S.FULFILLED,
        source=source,
        actor=actor,
        event_id=event_id,
        note="digital goods: complete on payment",
    )
    # The receipt, with the downloads, mailed by the worker once this commits.
    receipts.order_paid_mail_queue(order=order)
