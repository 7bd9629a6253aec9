"""The reconcile run's findings, and its checks of the money after the sale: refunds and
disputes of an order's payment against their records, and customers holding one plan twice
(``orders.reconcile.Reconciler`` runs them with the rest)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from orders import reconcile_fixes
from orders.models import OrderDispute, OrderPayment, OrderRefund
from orders.services.plans import subscriptions_duplicated
from orders.services.refunds import charge_and_intent


@dataclass
class Finding:
    kind: str
    object_type: str
    stripe_id: str
    detail: str
    order: str = ""  # the order's public id, when one is involved
    fix: str = ""  # what --fix would do ("" when it needs a person)
    fixed: str = ""  # what --fix did (or why it could not)

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class MoneyChecks:
    """Part of ``Reconciler``: uses its ``_found`` and ``since``."""

    def _check_plans(self) -> None:
        for duplicate in subscriptions_duplicated(since=self.since):
            self._found(
                Finding(
                    kind="duplicate_subscription",
                    object_type="customer",
                    stripe_id=duplicate.customer_id,
                    order=duplicate.orders[0] if duplicate.orders else "",
                    detail=duplicate.detail,
                )
            )

    @staticmethod
    def _payment_order(intent_id: str) -> str | None:
        """The public id of the order whose own payment ``intent_id`` is (none: no order's)."""
        if not intent_id:
            return None
        return (
            OrderPayment.objects.filter(payment_intent_id=intent_id)
            .exclude(flag=OrderPayment.Flag.UNEXPECTED)
            .values_list("order__public_id", flat=True)
            .first()
        )

    def _check_refund(self, refund: dict[str, Any]):
        """A refund of an order's payment whose record is missing or in another state (its
        events never arrived: a refund made in the Dashboard, or one that failed later)."""
        _, intent_id = charge_and_intent(refund)
        order = self._payment_order(intent_id)
        if order is None:
            return []
        row = OrderRefund.objects.filter(refund_id=refund["id"]).only("status", "amount").first()
        status, amount = refund.get("status"), refund.get("amount")
        if row is not None and (row.status, row.amount) == (status, amount):
            return []
        here = f"{row.status} of {row.amount}" if row is not None else "not recorded"
        return [
            self._found(
                Finding(
                    kind="order_mismatch",
                    object_type="refund",
                    stripe_id=refund["id"],
                    order=order,
                    detail=f"refund {here} here, {status} of {amount} in Stripe",
                    fix="record the refund as Stripe has it",
                ),
                lambda rid=refund["id"]: reconcile_fixes.refund_record(rid),
            )
        ]

    def _check_dispute(self, dispute: dict[str, Any]):
        """A dispute of an order's payment whose record is missing or in another state."""
        _, intent_id = charge_and_intent(dispute)
        order = self._payment_order(intent_id)
        if order is None:
            return []
        row = OrderDispute.objects.filter(dispute_id=dispute["id"]).only("stripe_status").first()
        status = dispute.get("status")
        if row is not None and row.stripe_status == status:
            return []
        here = row.stripe_status if row is not None else "not recorded"
        return [
            self._found(
                Finding(
                    kind="order_mismatch",
                    object_type="dispute",
                    stripe_id=dispute["id"],
                    order=order,
                    detail=f"dispute {here} here, {status} in Stripe",
                    fix="record the dispute as Stripe has it",
                ),
                lambda did=dispute["id"]: reconcile_fixes.dispute_record(did),
            )
        ]
