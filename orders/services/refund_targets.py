"""What of an order can be refunded: each of its payments that took money, with its charge, its
card, and what it has left after its refunds and the requests waiting for approval or Stripe.

Read from the order's records and the mirror (no Stripe call); ``refund_console`` checks a
refund against ``Target.remaining`` under the order's lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Sum
from djstripe.models import Charge, Invoice

from billing.consts import ChargeStatus
from billing.money import format_amount
from orders.models import Order, OrderPayment
from orders.records import ACTIVE, RESERVE, OrderDispute, OrderRefund


@dataclass(frozen=True)
class Target:
    payment: OrderPayment
    intent_id: str
    charge_id: str
    amount: int
    currency: str
    reserved: int  # refunded, on its way, or asked for
    card: str
    disputed: bool  # a chargeback stands: Stripe refunds no such charge

    @property
    def remaining(self) -> int:
        return max(self.amount - self.reserved, 0)

    @property
    def label(self) -> str:
        left = format_amount(self.remaining, self.currency)
        paid = format_amount(self.amount, self.currency)
        flag = f", flagged {self.payment.get_flag_display()}" if self.payment.flag else ""
        return f"{self.payment.stripe_id} ({paid} paid, {left} left to refund{flag})"


def _intent_of(payment: OrderPayment) -> str:
    """The payment intent that took the payment's money (an invoice's from its payments)."""
    if payment.payment_intent_id:
        return payment.payment_intent_id
    if payment.invoice_id:
        data = (
            Invoice.objects.filter(id=payment.invoice_id)
            .values_list("stripe_data", flat=True)
            .first()
            or {}
        )
        for item in ((data.get("payments") or {}).get("data")) or []:
            intent = (item.get("payment") or {}).get("payment_intent")
            if intent:
                return intent if isinstance(intent, str) else intent.get("id", "")
    return ""


def _card(data: dict) -> str:
    card = (data.get("payment_method_details") or {}).get("card") or {}
    if not card:
        return "the payment method used"
    return f"{(card.get('brand') or 'card').title()} •••• {card.get('last4') or '????'}"


def targets_for(*, order: Order, excluding: int | None = None) -> list[Target]:
    """The order's payments that took money, oldest first (a few queries, however many)."""
    payments = [
        p
        for p in order.payments.filter(status=OrderPayment.Status.SUCCEEDED).order_by("pk")
        if p.amount
    ]
    intents = {p.pk: _intent_of(p) for p in payments}
    charges = {}
    for charge in Charge.objects.filter(
        payment_intent_id__in=[i for i in intents.values() if i], status=ChargeStatus.SUCCEEDED
    ).order_by("created"):
        charges[charge.payment_intent_id] = charge  # the latest succeeded one wins
    held = OrderRefund.objects.filter(order=order, status__in=RESERVE)
    if excluding is not None:
        held = held.exclude(pk=excluding)
    reserved: dict[str, int] = {}
    recorded: dict[str, int] = {}  # of which Stripe has (active refunds)
    for intent, status, total in (
        held.values("payment_intent_id", "status")
        .order_by()
        .annotate(total=Sum("amount"))
        .values_list("payment_intent_id", "status", "total")
    ):
        reserved[intent] = reserved.get(intent, 0) + total
        if status in ACTIVE:
            recorded[intent] = recorded.get(intent, 0) + total
    disputed = set(
        OrderDispute.objects.filter(
            charge_id__in=[c.id for c in charges.values()], charge_refundable=False
        ).values_list("charge_id", flat=True)
    )
    targets = []
    for payment in payments:
        intent = intents[payment.pk]
        if not intent:
            continue  # nothing Stripe could refund through the API by this record
        charge = charges.get(intent)
        data = charge.stripe_data if charge is not None else {}
        # Refunds made in Stripe whose events have not arrived yet still count.
        unrecorded = int(data.get("amount_refunded") or 0) - recorded.get(intent, 0)
        taken = reserved.get(intent, 0) + max(unrecorded, 0)
        targets.append(
            Target(
                payment=payment,
                intent_id=intent,
                charge_id=charge.id if charge is not None else "",
                amount=payment.amount,
                currency=payment.currency.lower(),
                reserved=taken,
                card=_card(data),
                disputed=charge is not None and charge.id in disputed,
            )
        )
    return targets


def target_for(
    *, order: Order, payment_id: int | None, excluding: int | None = None
) -> Target | None:
    for target in targets_for(order=order, excluding=excluding):
        if target.payment.pk == payment_id:
            return target
    return None
