"""Payment outcomes: an order paid, failed, expired or refunded, decided from the latest
object Stripe has (re-fetched, never an event's snapshot, never the event's type).

Every Checkout Session, paid invoice and payment intent that touches an order is recorded as
an ``OrderPayment``. The order is paid only by a payment that belongs to it (a session it created,
or an invoice of its own subscription) for exactly its amount and currency; anything else is
recorded with a flag for support and logged, never applied and never dropped.

Idempotency has two layers: the order row is locked (``select_for_update``) and the payment's
state checked before any effect, so the webhook handler and the customer's return page can
both call ``order_fulfil`` for the same session, in any order or at once, and the order is paid
and fulfilled once. Payment rows are written only under their order's lock."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from djstripe.models import Customer, PaymentIntent, Session, Subscription

from orders.models import PAID_STATES, PAYABLE, TRANSITIONS, Order, OrderPayment
from orders.services.state import K, S, _note, _transition

logger = logging.getLogger(__name__)

P = OrderPayment.Status
F = OrderPayment.Flag


def _stripe_id(value: Any) -> str | None:
    """An id from a field that may be a string or an expanded object."""
    if isinstance(value, dict):
        return value.get("id")
    return value or None


def _order_find(
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


def _order_locked(
    *, metadata: dict[str, Any] | None, fallback: dict[str, str | None] | None = None
) -> tuple[Order | None, str]:
    """``_order_find`` for effects that are not payments: a distrusted link is left alone."""
    order, why, distrust = _order_find(metadata=metadata, fallback=fallback)
    if order is not None and distrust:
        return None, f"{distrust}; order {order.public_id} left alone"
    return order, why


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
    if order.status == S.EXPIRED:
        # Its own session paid after the order was marked expired (events out of order).
        _transition(order=order, to_status=S.AWAITING_PAYMENT, source=source, actor=actor,
                    event_id=event_id, note=note, kind="")  # fmt: skip
    order.paid_at = now
    _transition(order=order, to_status=S.PAID, source=source, actor=actor, event_id=event_id,
                note=note)  # fmt: skip
    order.fulfilled_at = now
    _transition(order=order, to_status=S.FULFILLED, source=source, actor=actor,
                event_id=event_id, note="digital goods: fulfilled on payment")  # fmt: skip


# --- Payments as records ---------------------------------------------------------------------


def session_payment_status(session: dict[str, Any]) -> str:
    """What a Checkout Session says about its money, from its status and payment status and
    (for a payment still settling) its payment intent's status."""
    status = session.get("status")
    if status == "expired":
        return P.CANCELED
    if status != "complete":
        return P.PENDING
    if session.get("payment_status") in ("paid", "no_payment_required"):
        return P.SUCCEEDED
    intent = session.get("payment_intent")
    intent_status = intent.get("status") if isinstance(intent, dict) else None
    if intent_status in ("requires_payment_method", "canceled"):
        return P.FAILED  # the delayed payment failed; the session stays complete and unpaid
    # Complete but unpaid: an asynchronous method (a bank debit) is settling.
    return P.PROCESSING


def session_payment_record(
    *, order: Order, session: dict[str, Any], source: str, event_id: str = ""
) -> OrderPayment:
    """The row of a session the order itself created (call under the order's lock)."""
    payment, _ = OrderPayment.objects.get_or_create(
        checkout_session_id=session["id"],
        defaults={
            "order": order, "kind": OrderPayment.Kind.CHECKOUT_SESSION,
            "status": session_payment_status(session),
            "amount": session.get("amount_total") or 0,
            "currency": session.get("currency") or order.currency,
            "source": source, "event_id": event_id,
        },
    )  # fmt: skip
    return payment


def _free(field: str, value: str | None, payment: OrderPayment) -> bool:
    """Whether ``value`` may be stored in ``field`` (unique): no other payment holds it."""
    if not value:
        return False
    taken = OrderPayment.objects.filter(**{field: value}).exclude(pk=payment.pk).exists()
    if taken:
        logger.error("%s %s is already on another payment; not copied to %s", field, value,
                     payment.pk or "a new payment")  # fmt: skip
    return not taken


def _problems(*, order: Order, payment: OrderPayment, own: bool, distrust: str) -> list:
    """Why a payment that moved money may not pay the order, most pressing first."""
    problems = []
    paid_by = order.payments.filter(applied=True).exclude(pk=payment.pk).first()
    if paid_by is not None or order.status in PAID_STATES:
        problems.append((F.SECOND_PAYMENT, f"order already paid ({paid_by or 'before records'})"))
    if payment.currency.lower() != order.currency.lower():
        problems.append((F.CURRENCY_MISMATCH,
                         f"currency {payment.currency} but the order is in {order.currency}"))  # fmt: skip
    if payment.amount != order.amount_total:
        problems.append((F.AMOUNT_MISMATCH,
                         f"amount {payment.amount} but the order totals {order.amount_total}"))  # fmt: skip
    if not own:
        problems.append((F.UNEXPECTED, distrust or f"not a payment {order.public_id} started"))
    if order.status == S.CANCELED and paid_by is None:
        problems.append((F.UNEXPECTED, "the order is canceled"))
    return problems


def _flag(*, order: Order, payment: OrderPayment, problems: list, source: str, event_id: str):
    """Keep the payment for support; tell the log; leave the order alone."""
    flag = problems[0][0]
    note = "; ".join(text for _, text in problems)
    first = not payment.flag
    payment.flag, payment.flag_note = flag, note
    payment.save()
    if first:
        _note(order=order, source=source, event_id=event_id,
              note=f"payment {payment.stripe_id} flagged for support: {note}")  # fmt: skip
    logger.error("order %s: payment %s (%s %s, %s) not applied, flagged %s: %s",
                 order.public_id, payment.stripe_id, payment.amount, payment.currency,
                 payment.status, flag, note)  # fmt: skip
    return f"order {order.public_id}: payment {payment.stripe_id} flagged {flag} ({note})"


def _payment_settle(
    *, order: Order, payment: OrderPayment, own: bool, distrust: str, source: str,
    event_id: str, actor=None,
) -> str:  # fmt: skip
    """What the payment's (just updated) status means for the order. Caller saves the order."""
    label = f"{payment.get_kind_display()} {payment.stripe_id}"
    if payment.applied:
        payment.save()
        return f"order {order.public_id} already {order.status} by {payment.stripe_id}"
    if payment.status in (P.SUCCEEDED, P.PROCESSING):
        problems = _problems(order=order, payment=payment, own=own, distrust=distrust)
        if problems:
            return _flag(order=order, payment=payment, problems=problems, source=source,
                         event_id=event_id)  # fmt: skip
    if not own:
        payment.save()
        return f"order {order.public_id}: {label} is not its own; {payment.status}, recorded"
    current = payment.checkout_session_id == order.checkout_session_id or (
        payment.kind == OrderPayment.Kind.INVOICE
    )
    if payment.status == P.SUCCEEDED:
        payment.applied, payment.succeeded_at = True, timezone.now()
        payment.save()
        _order_paid(order=order, source=source, event_id=event_id, actor=actor,
                    note=f"{label} paid")  # fmt: skip
        return f"order {order.public_id} paid and fulfilled"
    payment.save()
    if payment.status == P.PROCESSING and order.status in PAYABLE:
        _transition(order=order, to_status=S.PAYMENT_PROCESSING, source=source, actor=actor,
                    event_id=event_id, note=f"{label}: payment processing")  # fmt: skip
        return f"order {order.public_id}: payment processing"
    to_status = {P.FAILED: S.PAYMENT_FAILED, P.CANCELED: S.EXPIRED}.get(payment.status)
    if to_status is None:
        return f"order {order.public_id}: {label} {payment.status}"
    # A replaced session ending later says nothing about the order's current one.
    if not current:
        return f"order {order.public_id}: {payment.stripe_id} is not its current session"
    if order.status == to_status or to_status not in TRANSITIONS[order.status]:
        return f"order {order.public_id} is {order.status}; not {to_status}"
    _transition(order=order, to_status=to_status, source=source, actor=actor, event_id=event_id,
                note=f"{label} {payment.status}")  # fmt: skip
    return f"order {order.public_id} {to_status}"


def _payment_order(**match: str) -> tuple[Order | None, OrderPayment | None]:
    """The payment recorded under these Stripe ids and its order, locked; or (None, None)."""
    payment = OrderPayment.objects.filter(**match).only("order_id").first()
    if payment is None:
        return None, None
    order = Order.objects.select_for_update().get(pk=payment.order_id)
    return order, OrderPayment.objects.get(pk=payment.pk)


def order_fulfil(*, session: dict[str, Any], source: str, event_id: str = "", actor=None) -> str:
    """Record what a Checkout Session says about its money and act on it; return what
    happened, in words. Decides from the session's status (and its payment intent's), never
    from the event that brought it: the completion, async and expiry handlers all call this.

    ``session`` must be the latest state from Stripe (re-fetched, not an event snapshot).
    A session the order created pays it when paid in full in its currency, keeps it waiting
    while a delayed payment settles, and leaves it payable again when that payment fails or
    the session expires. Any other session that reaches the order (a Payment Link's
    ``client_reference_id``, another user's link, a second payment) is recorded and flagged.
    Links (payment intent, subscription) are filled in from the order's own payment only.
    """
    with transaction.atomic():
        order, payment = _payment_order(checkout_session_id=session["id"])
        distrust = ""
        if order is None:
            order, why, distrust = _order_find(
                metadata=session.get("metadata"),
                fallback={"public_id": session.get("client_reference_id")},
            )
            if order is None:
                return why
            payment = OrderPayment.objects.filter(checkout_session_id=session["id"]).first()
        # Its own: a session it created (recorded then, unflagged), or its current session
        # (orders from before payments were recorded).
        own = not distrust and (
            (payment is not None and payment.flag != F.UNEXPECTED)
            or (payment is None and order.checkout_session_id == session["id"])
        )
        if payment is None:
            payment = OrderPayment(
                order=order, kind=OrderPayment.Kind.CHECKOUT_SESSION,
                checkout_session_id=session["id"], source=source, event_id=event_id,
                # The session that paid an order from before payments were recorded.
                applied=own and order.status in PAID_STATES,
            )  # fmt: skip
        payment.status = session_payment_status(session)
        payment.amount = session.get("amount_total") or 0
        payment.currency = session.get("currency") or ""
        for field, value in (
            ("payment_intent_id", _stripe_id(session.get("payment_intent"))),
            ("subscription_id", _stripe_id(session.get("subscription"))),
            ("invoice_id", _stripe_id(session.get("invoice"))),
        ):
            if not getattr(payment, field) and _free(field, value, payment):
                setattr(payment, field, value)
        outcome = _payment_settle(order=order, payment=payment, own=own, distrust=distrust,
                                  source=source, event_id=event_id, actor=actor)  # fmt: skip
        if own and (payment.applied or payment.status == P.PROCESSING):
            _link_if_mirrored(order, "checkout_session", Session, session["id"])
            _link_if_mirrored(order, "customer", Customer, _stripe_id(session.get("customer")))
            _link_if_mirrored(order, "payment_intent", PaymentIntent, payment.payment_intent_id)
            _link_if_mirrored(order, "subscription", Subscription, payment.subscription_id)
        order.save()
        return outcome


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


def _own_subscription(
    *, order: Order, subscription_id: str | None, linked: bool, customer_id: str | None
) -> bool:
    """Whether ``subscription_id`` is the order's: the one it links, or one its own session
    started; or, before either is known (the first invoice can arrive before the session's
    completion), one of the order's Stripe customer whose metadata links it (``linked``)."""
    if not subscription_id:
        return False
    if order.subscription_id:
        return order.subscription_id == subscription_id
    own_session = order.payments.filter(subscription_id=subscription_id).exclude(flag=F.UNEXPECTED)
    return own_session.exists() or (
        linked
        and order.mode == Order.Mode.SUBSCRIPTION
        and bool(customer_id)
        and customer_id == order.customer_id
    )


def order_invoice_paid(*, invoice: dict[str, Any], source: str, event_id: str = "") -> str:
    """A subscription invoice was paid: the first one pays the order (unless its session did
    already: the same money, one record), later ones renew it. Decided from the invoice's
    status; an invoice of a subscription that is not the order's, or for another amount or
    currency, is recorded and flagged."""
    if invoice.get("status") != "paid":
        return f"invoice {invoice['id']} is {invoice.get('status')}; nothing to do"
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    subscription_id = _stripe_id(parent.get("subscription") or invoice.get("subscription"))
    metadata = parent.get("metadata") or invoice.get("metadata")
    first = invoice.get("billing_reason") == "subscription_create"
    with transaction.atomic():
        order, payment = _payment_order(invoice_id=invoice["id"])
        distrust = ""
        if order is None:
            order, why, distrust = _order_find(
                metadata=metadata, fallback={"subscription_id": subscription_id}
            )
            if order is None:
                return why
            payment = OrderPayment.objects.filter(invoice_id=invoice["id"]).first()
        linked = (metadata or {}).get("order_id") == order.public_id
        own = not distrust and _own_subscription(
            order=order, subscription_id=subscription_id, linked=linked,
            customer_id=_stripe_id(invoice.get("customer")),
        )  # fmt: skip
        if payment is None and own and first:
            # The first invoice is the money of the session that started the subscription.
            payment = (
                order.payments.filter(kind=OrderPayment.Kind.CHECKOUT_SESSION, invoice_id="")
                .exclude(flag=F.UNEXPECTED)
                .filter(
                    Q(subscription_id=subscription_id)
                    | Q(subscription_id="", checkout_session_id=order.checkout_session_id or "-")
                )
                .first()
            )
            if payment is not None:
                payment.invoice_id, payment.subscription_id = invoice["id"], subscription_id
        if payment is None:
            payment = OrderPayment(
                order=order, kind=OrderPayment.Kind.INVOICE, invoice_id=invoice["id"],
                subscription_id=subscription_id or "", source=source, event_id=event_id,
            )  # fmt: skip
        if own:
            _link_if_mirrored(order, "subscription", Subscription, subscription_id)
            _link_if_mirrored(order, "customer", Customer, _stripe_id(invoice.get("customer")))
        if payment.applied:
            order.save()
            return f"order {order.public_id} already {order.status} by {payment.stripe_id}"
        payment.status = P.SUCCEEDED
        payment.amount = invoice.get("amount_paid") or 0
        payment.currency = invoice.get("currency") or ""
        if own and not first and payment.kind == OrderPayment.Kind.INVOICE:
            # A renewal of its own subscription: expected money, not the order's payment.
            payment.succeeded_at = payment.succeeded_at or timezone.now()
            created = payment.pk is None
            payment.save()
            if created and invoice.get("billing_reason") == "subscription_cycle":
                _note(order=order, source=source, event_id=event_id, kind=K.RENEWED,
                      note=f"renewal invoice {invoice['id']} paid ({payment.amount})")  # fmt: skip
            order.save()
            return f"order {order.public_id}: invoice {invoice['id']} paid"
        outcome = _payment_settle(order=order, payment=payment, own=own, distrust=distrust,
                                  source=source, event_id=event_id)  # fmt: skip
        order.save()
        return outcome


def intent_unrecorded(*, order: Order, intent_id: str) -> bool:
    """Whether a succeeded payment intent naming ``order`` is one ``order_intent_record``
    would record now: on no payment yet, and no session of the order's may still own it."""
    recorded = OrderPayment.objects.filter(payment_intent_id=intent_id).exists()
    return not recorded and not _session_may_own(order)


def _session_may_own(order: Order) -> str:
    """The order's own Checkout Session that may still turn out to hold a payment intent
    (open or settling, its intent not known yet); "" when there is none."""
    open_session = (
        order.payments.filter(
            kind=OrderPayment.Kind.CHECKOUT_SESSION,
            payment_intent_id="",
            status__in=(P.PENDING, P.PROCESSING),
        )
        .exclude(flag=F.UNEXPECTED)
        .first()
    )
    if open_session is not None:
        return open_session.checkout_session_id
    current = order.checkout_session_id
    if current and not order.payments.filter(checkout_session_id=current).exists():
        return current  # an order from before payments were recorded
    return ""


def order_intent_record(*, intent: dict[str, Any], source: str, event_id: str = "") -> str:
    """A payment intent that succeeded naming an order (``metadata.order_id``) but outside the
    order's Checkout Session and subscription: made by hand through the API or the Dashboard.
    It is recorded and flagged for support, never applied: only the order's own session or
    invoice pays it. Decided from the re-fetched intent's status.

    Intents of the order's sessions and invoices are recorded with them by their own handlers.
    Stripe sends ``payment_intent.succeeded`` before ``checkout.session.completed`` as often
    as after, so while the order has a session of its own that may still hold this intent,
    the intent is left to that session (said in the event's outcome).
    """
    intent_id = intent["id"]
    if intent.get("status") != "succeeded":
        return f"payment intent {intent_id} is {intent.get('status')}; nothing to record"
    with transaction.atomic():
        order, payment = _payment_order(payment_intent_id=intent_id)
        if payment is not None:
            return f"{intent_id} is recorded with {payment.get_kind_display()} {payment.stripe_id}"
        order, why, distrust = _order_find(metadata=intent.get("metadata"))
        if order is None:
            return why
        session_id = _session_may_own(order)
        if session_id:
            return (
                f"order {order.public_id}: {intent_id} may be its session {session_id}'s; "
                "left to the session's events"
            )
        payment = OrderPayment(
            order=order, kind=OrderPayment.Kind.PAYMENT_INTENT, payment_intent_id=intent_id,
            status=P.SUCCEEDED, amount=intent.get("amount_received") or 0,
            currency=intent.get("currency") or "", source=source, event_id=event_id,
        )  # fmt: skip
        outcome = _payment_settle(order=order, payment=payment, own=False, distrust=distrust,
                                  source=source, event_id=event_id)  # fmt: skip
        order.save()
        return outcome


def order_payments_resolve(*, actor, payment_ids: list[int], note: str = "") -> int:
    """Support has handled these flagged payments (refunded, explained): mark them resolved,
    by whom and when, in each order's history. Unflagged or already resolved ones are left as
    they are. Returns how many were marked. Needs ``orders.resolve_orderpayment``."""
    if not actor.has_perm("orders.resolve_orderpayment"):
        raise PermissionDenied("Marking payments resolved needs the resolve permission.")
    marked = 0
    with transaction.atomic():
        wanted = OrderPayment.objects.filter(pk__in=payment_ids).exclude(flag=F.NONE)
        order_ids = sorted(set(wanted.values_list("order_id", flat=True)))
        # Orders locked in one order (by pk), as every payment writer locks its order first.
        orders = {o.pk: o for o in Order.objects.select_for_update().filter(pk__in=order_ids)
                  .order_by("pk")}  # fmt: skip
        for payment in wanted.filter(resolved_at=None).order_by("order_id", "pk"):
            payment.resolved_at, payment.resolved_by = timezone.now(), actor
            payment.save(update_fields=["resolved_at", "resolved_by", "updated_at"])
            _note(order=orders[payment.order_id], source="support console", actor=actor,
                  note=f"flagged payment {payment.stripe_id} ({payment.flag}) marked resolved"
                  + (f": {note}" if note else ""))  # fmt: skip
            marked += 1
    return marked
