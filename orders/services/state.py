"""The order state machine: every status change goes through ``_transition``, recorded in
history with who or what caused it."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from orders.models import TRANSITIONS, Order, OrderHistory

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


def _record(
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


def _transition(
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
    _record(
        order=order, to_status=to_status, source=source, actor=actor, event_id=event_id,
        note=note, kind=kind,
    )  # fmt: skip
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
        _transition(
            order=locked, to_status=to_status, source=source, actor=actor, event_id=event_id,
            note=note,
        )  # fmt: skip
        locked.save(update_fields=["status", "updated_at"])
    return locked


def _note(
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
    _record(
        order=order, to_status=order.status, source=source, actor=actor, event_id=event_id,
        note=note, kind=kind, data=data,
    )  # fmt: skip
