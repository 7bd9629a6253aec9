"""Money after the sale, as records: each refund and each dispute that touches an order.

A refund is a record like a payment (pretix ``OrderRefund``): one row per Stripe refund, unique
on its id, whoever made it (the console, Stripe's Dashboard, the API); a refund asked for in the
console is a row before Stripe has it (awaiting a Billing admin's approval, or being sent). A
dispute is a record with its deadline, so the console can list disputes by evidence due date
through an index. Stripe's own objects stay in the mirror (dj-stripe's ``Refund``/``Dispute``);
these rows are what the shop made of them, written only under their order's lock
(``orders.services.refunds``, ``orders.services.disputes``).

Imported by ``orders.models`` (the app's models module); they name ``Order`` by its label, so
neither module imports the other's names.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class OrderRefund(models.Model):
    """Money given back on one of the order's payments: Stripe's refund, or the console's
    request for one (before Stripe has it).

    The order's refunded amount and status are derived from its rows in ``ACTIVE`` statuses
    (``orders.services.refunds.order_money_derive``); a new refund may not exceed what the
    payment has left after the rows that ``RESERVE`` its money.
    """

    class Status(models.TextChoices):
        # Before Stripe: the console's rows.
        REQUESTED = "requested", "awaiting approval"
        REJECTED = "rejected", "request rejected"
        SENDING = "sending", "being sent to Stripe"
        NOT_SENT = "not_sent", "refused by Stripe (nothing refunded)"
        # Stripe's statuses of the refund.
        PENDING = "pending", "pending"
        REQUIRES_ACTION = "requires_action", "awaiting customer action"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        CANCELED = "canceled", "canceled"

    class Origin(models.TextChoices):
        CONSOLE = "console", "support console"
        STRIPE = "stripe", "outside the console (Stripe Dashboard or API)"

    class Reason(models.TextChoices):
        NONE = "", "none given"
        REQUESTED_BY_CUSTOMER = "requested_by_customer", "requested by the customer"
        DUPLICATE = "duplicate", "duplicate payment"
        FRAUDULENT = "fraudulent", "fraudulent"
        EXPIRED_UNCAPTURED = "expired_uncaptured_charge", "expired uncaptured charge"

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="refunds")
    payment = models.ForeignKey(
        "orders.OrderPayment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refunds",
        help_text="The payment given back (none: a refund of money the order never recorded)",
    )
    refund_id = models.CharField(max_length=255, blank=True, help_text="Stripe refund (re_...)")
    charge_id = models.CharField(max_length=255, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True)
    amount = models.PositiveBigIntegerField(help_text="In the currency's minor unit")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices)
    reason = models.CharField(max_length=32, choices=Reason.choices, blank=True)
    note = models.TextField(blank=True, help_text="Support's note (not sent to Stripe)")
    # [{"item": pk, "description": ..., "quantity": n, "amount": minor units}] when refunded by
    # line; empty when by amount.
    lines = models.JSONField(default=list, blank=True)
    origin = models.CharField(max_length=16, choices=Origin.choices)
    # The console form's one-time token: a double submit finds the row the first one made,
    # and Stripe's idempotency key is derived from it.
    request_token = models.CharField(max_length=64, blank=True, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    failure_reason = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True, help_text="Stripe's answer when it refused the refund")
    # A failed refund: the customer did not get the money; support must act (contact them,
    # refund another way). Resolved by a Billing admin, as flagged payments are.
    flagged = models.BooleanField(default=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    source = models.CharField(max_length=64, help_text="Which code path recorded it")
    event_id = models.CharField(max_length=255, blank=True, help_text="Stripe event (evt_...)")
    created_at = models.DateTimeField(default=timezone.now)
    refunded_at = models.DateTimeField(
        null=True, blank=True, help_text="When Stripe made the refund"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "refund"
        indexes = [
            models.Index(fields=["created_at", "id"], name="orderrefund_list"),
            models.Index(fields=["status", "created_at", "id"], name="orderrefund_status"),
            models.Index(fields=["flagged", "created_at", "id"], name="orderrefund_flagged"),
            models.Index(fields=["charge_id"], name="orderrefund_charge"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["refund_id"], condition=~models.Q(refund_id=""), name="orderrefund_once"
            ),
            models.UniqueConstraint(
                fields=["order", "request_token"],
                condition=~models.Q(request_token=""),
                name="orderrefund_request_once",
            ),
        ]
        permissions = [
            ("refund", "Can refund any amount and approve refund requests"),
            ("request_refund", "Can refund up to the approval threshold, and request more"),
        ]

    def __str__(self) -> str:
        return self.refund_id or f"refund request {self.pk}"

    @property
    def awaiting_approval(self) -> bool:
        return self.status == self.Status.REQUESTED


R = OrderRefund.Status
# Money on its way back or back: counts in the order's refunded amount.
ACTIVE = frozenset({R.PENDING, R.REQUIRES_ACTION, R.SUCCEEDED})
# Money a new refund may not take: the active rows, and those waiting for approval or Stripe.
RESERVE = ACTIVE | {R.REQUESTED, R.SENDING}
# Rows Stripe does not have (yet, or ever).
BEFORE_STRIPE = frozenset({R.REQUESTED, R.REJECTED, R.SENDING, R.NOT_SENT})


class OrderDispute(models.Model):
    """A dispute (chargeback or inquiry) on a charge, with its evidence deadline: the shop's
    record of dj-stripe's ``Dispute``, tied to the order whose payment the charge is (none when
    the charge is no order's). Kept from the dispute as Stripe has it; ``note`` is support's.
    Evidence is submitted in Stripe's Dashboard."""

    class State(models.TextChoices):
        NEEDS_RESPONSE = "needs_response", "response needed"
        UNDER_REVIEW = "under_review", "under review"
        WON = "won", "won"
        LOST = "lost", "lost"
        CLOSED = "closed", "closed (inquiry, no chargeback)"

    dispute_id = models.CharField(max_length=255, unique=True, help_text="du_... (dp_...)")
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="disputes"
    )
    charge_id = models.CharField(max_length=255, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True)
    amount = models.PositiveBigIntegerField(help_text="In the currency's minor unit")
    currency = models.CharField(max_length=3)
    state = models.CharField(max_length=16, choices=State.choices)
    stripe_status = models.CharField(max_length=32, help_text="Stripe's own status")
    reason = models.CharField(max_length=64, blank=True)
    inquiry = models.BooleanField(default=False, help_text="An inquiry: no funds withdrawn yet")
    due_by = models.DateTimeField(null=True, blank=True, help_text="Evidence due by (Stripe's)")
    # ``due_by`` while a response is due, else empty: the list's order, soonest first.
    respond_by = models.DateTimeField(null=True, blank=True, editable=False)
    charge_refundable = models.BooleanField(default=True)
    funds_withdrawn = models.BigIntegerField(default=0, help_text="Net of reinstatements")
    note = models.TextField(blank=True, help_text="Support's note (kept here, not in Stripe)")
    noted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_in_stripe = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Soonest deadline first; those awaiting no response (no deadline) after.
        ordering = [models.F("respond_by").asc(nulls_last=True), "-id"]
        verbose_name = "dispute"
        indexes = [
            models.Index(fields=["respond_by", "-id"], name="orderdispute_due"),
            models.Index(fields=["state", "respond_by", "-id"], name="orderdispute_state"),
        ]
        permissions = [("note_orderdispute", "Can keep a note on a dispute")]

    def __str__(self) -> str:
        return self.dispute_id

    @property
    def open(self) -> bool:
        return self.state in (self.State.NEEDS_RESPONSE, self.State.UNDER_REVIEW)
