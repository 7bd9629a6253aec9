"""What an order's money adds up to across all its payments: paid, refunded and net, each
payment on its own line, flagged ones marked and counted apart from the order's own.

The order's ``amount_refunded`` follows its own payment only; a second payment (flagged) and
its refunds are real money too, and support must see them. Refunds are read from the mirror's
charges of each payment's payment intent (one query for the order).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from djstripe.models import Charge

from orders.models import Order, OrderPayment

# Payments that moved money (a settling one has not yet, and may fail).
_MOVED = (OrderPayment.Status.SUCCEEDED,)


@dataclass(frozen=True)
class PaymentLine:
    payment: OrderPayment
    paid: int  # minor units; 0 when no money moved
    refunded: int
    flagged: bool  # a payment the order did not expect (open or resolved)

    @property
    def net(self) -> int:
        return self.paid - self.refunded


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    paid: int
    refunded: int
    flagged_paid: int  # of ``paid``, what came through flagged payments
    flagged_refunded: int

    @property
    def net(self) -> int:
        return self.paid - self.refunded


@dataclass(frozen=True)
class OrderMoney:
    lines: list[PaymentLine]
    totals: list[CurrencyTotal]  # one per currency, the order's own first


def order_money(*, order: Order) -> OrderMoney:
    payments = list(order.payments.order_by("created_at", "id"))
    intents = [p.payment_intent_id for p in payments if p.payment_intent_id]
    refunded: dict[str, int] = defaultdict(int)
    for intent, amount in Charge.objects.filter(payment_intent_id__in=intents).values_list(
        "payment_intent_id", "stripe_data__amount_refunded"
    ):
        refunded[intent] += int(amount or 0)
    lines = []
    for payment in payments:
        moved = payment.status in _MOVED
        lines.append(
            PaymentLine(
                payment=payment,
                paid=payment.amount if moved else 0,
                refunded=refunded.get(payment.payment_intent_id, 0) if moved else 0,
                flagged=bool(payment.flag),
            )
        )
    sums: dict[str, list[int]] = {}
    for line in lines:
        if not line.paid:
            continue
        row = sums.setdefault(line.payment.currency.lower(), [0, 0, 0, 0])
        row[0] += line.paid
        row[1] += line.refunded
        if line.flagged:
            row[2] += line.paid
            row[3] += line.refunded
    own = order.currency.lower()
    totals = [
        CurrencyTotal(currency, *values)
        for currency, values in sorted(sums.items(), key=lambda kv: (kv[0] != own, kv[0]))
    ]
    return OrderMoney(lines=lines, totals=totals)
