"""The shop's own records: orders, their items and their history.

Stripe holds the money; an ``Order`` is the business's view of one purchase, linked to the
Stripe objects behind it (foreign keys into dj-stripe's mirror, by Stripe id) and to Stripe
through ``metadata.order_id`` on those objects. Status changes only through
``orders.services``, which checks them against ``TRANSITIONS`` and records each in history.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


def new_public_id() -> str:
    # 80 random bits: unguessable, short enough for URLs and Stripe metadata values.
    return f"ord_{secrets.token_hex(10)}"


class Order(models.Model):
    class Status(models.TextChoices):
        # The labels are the words customers and support both read (``orders.wording``).
        AWAITING_PAYMENT = "awaiting_payment", "Awaiting payment"
        # A payment that settles later (a bank debit) was made: nothing new may be started.
        PAYMENT_PROCESSING = "payment_processing", "Payment processing"
        PAID = "paid", "Paid"
        FULFILLED = "fulfilled", "Complete"
        PAYMENT_FAILED = "payment_failed", "Payment failed"
        EXPIRED = "expired", "Not paid"  # Checkout closed before payment
        CANCELED = "canceled", "Cancelled"
        REFUNDED = "refunded", "Refunded"
        PARTIALLY_REFUNDED = "partially_refunded", "Partly refunded"

    class Mode(models.TextChoices):
        PAYMENT = "payment", "one-time payment"
        SUBSCRIPTION = "subscription", "subscription"

    class Disputed(models.TextChoices):
        """Whether a payment of the order is disputed (``OrderDispute``), apart from its status:
        the money's state derives from payments and refunds; a dispute may be won."""

        NO = "", "not disputed"
        OPEN = "open", "disputed: open"
        WON = "won", "dispute won"
        LOST = "lost", "dispute lost"
        CLOSED = "closed", "inquiry closed"

    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    # The buy form's one-time token: a double submit finds the order the first submit made.
    request_token = models.CharField(max_length=64, editable=False)
    email = models.EmailField(blank=True, help_text="The customer's email when ordering")
    status = models.CharField(
        max_length=32, choices=Status.choices, default=Status.AWAITING_PAYMENT
    )
    mode = models.CharField(max_length=16, choices=Mode.choices)
    currency = models.CharField(max_length=3)
    amount_total = models.PositiveBigIntegerField(help_text="In the currency's minor unit")
    amount_refunded = models.PositiveBigIntegerField(default=0)
    disputed = models.CharField(
        max_length=8, choices=Disputed.choices, default=Disputed.NO, blank=True
    )
    # Which Checkout Session attempt is current; part of the session's idempotency key, so a
    # double submit reuses the session and paying again after expiry makes a new one.
    checkout_attempt = models.PositiveIntegerField(default=1)

    checkout_session = models.ForeignKey(
        "djstripe.Session",
        to_field="id",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    payment_intent = models.ForeignKey(
        "djstripe.PaymentIntent",
        to_field="id",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    customer = models.ForeignKey(
        "djstripe.Customer",
        to_field="id",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    subscription = models.ForeignKey(
        "djstripe.Subscription",
        to_field="id",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # Set when the customer bought the same product again before paying this order: this one
    # is then canceled and kept out of their list (``orders.services.cancellation``).
    replaced_by = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="replaces",
    )

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "request_token"], name="order_request_once"),
        ]
        # The console's list in its order, whole or by status (the email's index is made by
        # migration 0007: an expression, with PostgreSQL's pattern operators for prefixes).
        indexes = [
            models.Index(fields=["created_at", "id"], name="order_list"),
            models.Index(fields=["status", "created_at", "id"], name="order_list_status"),
            models.Index(fields=["user", "created_at"], name="order_user_list"),
            models.Index(fields=["disputed", "created_at", "id"], name="order_list_disputed"),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def number(self) -> str:
        """What the customer sees and quotes: 8 characters of the public id, upper case (hex has
        no O/0 or I/1 to confuse); support finds the order by it (a substring of public_id)."""
        return self.public_id.removeprefix("ord_")[:8].upper()

    @property
    def is_payable(self) -> bool:
        return self.status in PAYABLE

    @property
    def amount_net(self) -> int:
        return self.amount_total - self.amount_refunded


S = Order.Status
# The state machine: every status change services make must be listed here.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.AWAITING_PAYMENT: frozenset(
        {S.PAYMENT_PROCESSING, S.PAID, S.PAYMENT_FAILED, S.EXPIRED, S.CANCELED}
    ),
    # Settles either way; until then the order is not payable (no second session).
    S.PAYMENT_PROCESSING: frozenset({S.PAID, S.PAYMENT_FAILED, S.CANCELED}),
    # A failed or expired order stays payable: a new Checkout Session brings it back.
    S.PAYMENT_FAILED: frozenset(
        {S.AWAITING_PAYMENT, S.PAYMENT_PROCESSING, S.PAID, S.EXPIRED, S.CANCELED}
    ),
    S.EXPIRED: frozenset({S.AWAITING_PAYMENT, S.CANCELED}),
    S.PAID: frozenset({S.FULFILLED, S.REFUNDED, S.PARTIALLY_REFUNDED, S.CANCELED}),
    S.FULFILLED: frozenset({S.REFUNDED, S.PARTIALLY_REFUNDED, S.CANCELED}),
    # A refund that fails later gives the money back to the shop: the order returns to the
    # state its refunds leave it in (``orders.services.refunds``).
    S.PARTIALLY_REFUNDED: frozenset({S.REFUNDED, S.CANCELED, S.PAID, S.FULFILLED}),
    S.REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.PAID, S.FULFILLED}),
    S.CANCELED: frozenset(),
}
PAYABLE = frozenset({S.AWAITING_PAYMENT, S.PAYMENT_FAILED, S.EXPIRED})
PAID_STATES = frozenset({S.PAID, S.FULFILLED, S.PARTIALLY_REFUNDED, S.REFUNDED})


class OrderItem(models.Model):
    """One line as it was priced when ordered (prices change; the order must not)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    price = models.ForeignKey(
        "djstripe.Price",
        to_field="id",
        on_delete=models.PROTECT,
        related_name="+",
    )
    description = models.CharField(max_length=255)
    quantity = models.PositiveIntegerField()
    unit_amount = models.PositiveBigIntegerField(help_text="In the currency's minor unit")
    recurring_interval = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.description}"

    @property
    def amount(self) -> int:
        return self.unit_amount * self.quantity


class OrderHistory(models.Model):
    """A status change (or a noteworthy fact, when the status stays) and who caused it.

    ``note`` is for support; ``kind`` (and ``data``) is what the customer is told, worded in
    one place (``orders.wording``). Entries without a kind are internal.
    """

    class Kind(models.TextChoices):
        PLACED = "placed", "order placed"
        PAYMENT_RESTARTED = "payment_restarted", "payment started again"
        PAYMENT_PROCESSING = "payment_processing", "payment processing"
        PAID = "paid", "payment received"
        FULFILLED = "fulfilled", "fulfilled"
        PAYMENT_FAILED = "payment_failed", "payment failed"
        # An attempt declined while the order stays payable (a card refused on Checkout).
        PAYMENT_DECLINED = "payment_declined", "payment attempt declined"
        EXPIRED = "expired", "checkout expired"
        CANCELED = "canceled", "canceled"
        CANCELED_BY_CUSTOMER = "canceled_by_customer", "canceled by the customer"
        REPLACED = "replaced", "replaced by a newer order"
        SUBSCRIPTION_ENDED = "subscription_ended", "subscription ended"
        REFUNDED = "refunded", "refunded"
        PARTIALLY_REFUNDED = "partially_refunded", "partially refunded"
        REFUND_FAILED = "refund_failed", "a refund failed"
        RENEWED = "renewed", "subscription renewed"
        CANCEL_SCHEDULED = "cancel_scheduled", "subscription set to end"
        CANCEL_UNDONE = "cancel_undone", "subscription resumed"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=32, blank=True)
    to_status = models.CharField(max_length=32)
    at = models.DateTimeField(default=timezone.now)
    # One of: a user (customer or staff), a Stripe event id, or a named code path.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    event_id = models.CharField(max_length=255, blank=True, help_text="Stripe event (evt_...)")
    source = models.CharField(max_length=64, help_text="Which code path: webhook, return page, ...")
    note = models.TextField(blank=True)
    kind = models.CharField(max_length=32, choices=Kind.choices, blank=True)
    data = models.JSONField(default=dict, blank=True, help_text="Facts the wording needs")

    class Meta:
        ordering = ["at", "pk"]
        verbose_name_plural = "order history"

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_status or '-'} → {self.to_status} ({self.source})"


class OrderPayment(models.Model):
    """One payment that touched an order: a Checkout Session (with its payment intent), a
    paid invoice, or a payment intent made outside both (by hand, naming the order in its
    metadata). A record, not a flag on the order (pretix ``OrderPayment``).

    The order's own sessions get a row when they are created (``pending``); Stripe's answers
    move it on. Only a payment that belongs to the order and matches its amount and currency
    pays it (``applied``); anything else is kept here with a ``flag`` for support, who mark it
    resolved once handled (refunded, explained). Written only under the order's row lock.
    """

    class Kind(models.TextChoices):
        CHECKOUT_SESSION = "checkout_session", "Checkout Session"
        INVOICE = "invoice", "invoice"
        PAYMENT_INTENT = "payment_intent", "payment intent (outside Checkout)"

    class Status(models.TextChoices):
        # The same words as the order's statuses (``Order.Status``).
        PENDING = "pending", "Awaiting payment"  # created, not paid (an open session)
        PROCESSING = "processing", "Payment processing"  # a method that settles later
        SUCCEEDED = "succeeded", "Paid"
        FAILED = "failed", "Payment failed"
        CANCELED = "canceled", "Not paid"  # the session expired unpaid

    class Flag(models.TextChoices):
        NONE = "", "none"
        UNEXPECTED = "unexpected", "unexpected (not the order's session or subscription)"
        AMOUNT_MISMATCH = "amount_mismatch", "amount differs from the order"
        CURRENCY_MISMATCH = "currency_mismatch", "currency differs from the order"
        SECOND_PAYMENT = "second_payment", "second payment (order already paid)"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    amount = models.PositiveBigIntegerField(help_text="In the currency's minor unit")
    currency = models.CharField(max_length=3)
    checkout_session_id = models.CharField(max_length=255, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True)
    invoice_id = models.CharField(max_length=255, blank=True)
    subscription_id = models.CharField(max_length=255, blank=True, db_index=True)
    # True for the one payment that paid the order.
    applied = models.BooleanField(default=False)
    # Who recorded it: a code path, and the Stripe event when one did.
    source = models.CharField(max_length=64)
    event_id = models.CharField(max_length=255, blank=True, help_text="Stripe event (evt_...)")

    flag = models.CharField(max_length=32, choices=Flag.choices, blank=True, db_index=True)
    flag_note = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["created_at", "id"], name="orderpayment_list"),
            # Open flags, for the front page's count and the list's filter: a few rows, found
            # without reading the table however many payments it holds.
            models.Index(
                fields=["created_at", "id"],
                condition=~models.Q(flag="") & models.Q(resolved_at=None),
                name="orderpayment_open_flags",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["checkout_session_id"],
                condition=~models.Q(checkout_session_id=""),
                name="orderpayment_session_once",
            ),
            models.UniqueConstraint(
                fields=["payment_intent_id"],
                condition=~models.Q(payment_intent_id=""),
                name="orderpayment_payment_intent_once",
            ),
            models.UniqueConstraint(
                fields=["invoice_id"],
                condition=~models.Q(invoice_id=""),
                name="orderpayment_invoice_once",
            ),
        ]
        permissions = [("resolve_orderpayment", "Can mark flagged payments resolved")]

    def __str__(self) -> str:
        return self.stripe_id or f"payment {self.pk}"

    @property
    def stripe_id(self) -> str:
        return self.checkout_session_id or self.invoice_id or self.payment_intent_id


class OrderReference(models.Model):
    """A Stripe id tied to an order: the console's one way from any id a customer quotes to
    their order (pretix's ``ReferencedStripeObject``). Written on the mirror write path for
    every object the mirror writes, and for the ids those objects name
    (``orders.references``); only ever added to: an object keeps the orders it was tied to."""

    stripe_id = models.CharField(max_length=255)
    object_type = models.CharField(max_length=64)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="references")

    class Meta:
        constraints = [
            # Its index serves the lookup by id.
            models.UniqueConstraint(fields=["stripe_id", "order"], name="order_reference_once"),
        ]
        indexes = [models.Index(fields=["order", "object_type"], name="order_reference_order")]

    def __str__(self) -> str:
        return f"{self.stripe_id} → order {self.order_id}"


class CustomerSettings(models.Model):
    """A customer's own choices: the time zone their pages show times in."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shop_settings"
    )
    time_zone = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name_plural = "customer settings"

    def __str__(self) -> str:
        return f"{self.user_id}: {self.time_zone or 'default time zone'}"


# Refunds and disputes as records (their own module; see its docstring).
# Digital goods delivered: downloads counted per order item (their own module).
from orders.delivery import ItemDownload  # noqa: E402, F401
from orders.records import OrderDispute, OrderRefund  # noqa: E402, F401
