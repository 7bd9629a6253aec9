"""What customers read: statuses, history and trouble, worded in one place.

Internal text (status codes, Stripe ids, Stripe's own error messages) stays in the admin and
the log; pages show these words instead.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.formats import date_format

from billing.money import format_amount
from orders.models import Order, OrderHistory

S = Order.Status
K = OrderHistory.Kind

# The site's formats (config/formats/en): 12 Jan 2027, and 12 Jan 2027, 14:05 CET.
DATE = "DATE_FORMAT"
DATE_TIME = "DATETIME_FORMAT"

# One set of words for statuses, on the customer's pages and in the console alike: the
# order's (and a payment record's) are their model choices' labels.
STATUS: dict[str, str] = dict(S.choices)

# Stripe's subscription statuses.
SUBSCRIPTION: dict[str, str] = {
    "active": "Active",
    "trialing": "Trial",
    "past_due": "Payment overdue",
    "unpaid": "Unpaid",
    "incomplete": "Awaiting the first payment",
    "incomplete_expired": "Not started",
    "paused": "Paused",
    "canceled": "Ended",
}

# History kind -> the line the customer reads; ``{date}`` is the entry's ``data["date"]``.
HISTORY: dict[str, str] = {
    K.PLACED: "Order placed",
    K.PAYMENT_RESTARTED: "Payment started again",
    K.PAYMENT_PROCESSING: "Payment made; waiting for your bank to confirm it",
    K.PAID: "Payment received",
    K.FULFILLED: "Order complete",
    K.PAYMENT_FAILED: "The payment did not go through",
    K.PAYMENT_DECLINED: "A payment attempt was declined: {reason}. Nothing was charged",
    K.EXPIRED: "Checkout closed before payment",
    K.CANCELED: "Order cancelled",
    K.CANCELED_BY_CUSTOMER: "You cancelled this order",
    K.REPLACED: "Replaced by your newer order",
    K.SUBSCRIPTION_ENDED: "Subscription ended",
    K.REFUNDED: "Refunded in full",
    K.PARTIALLY_REFUNDED: "Partly refunded",
    K.REFUND_FAILED: "A refund could not be completed; we will contact you about it",
    K.RENEWED: "Subscription renewed: payment received",
    K.CANCEL_SCHEDULED: "Subscription will end on {date}",
    K.CANCEL_UNDONE: "Subscription resumed: it renews on {date}",
}
# Why a card was declined (Stripe's decline codes), as a customer may be told: a lost or
# stolen card is told only that it was declined.
DECLINE_REASONS: dict[str, str] = {
    "insufficient_funds": "the card has insufficient funds",
    "expired_card": "the card has expired",
    "incorrect_cvc": "the card's security code was incorrect",
    "incorrect_number": "the card number was incorrect",
    "processing_error": "the card could not be processed; please try again",
}
DECLINED = "your card was declined"
# The same lines when the date is not known.
UNDATED: dict[str, str] = {
    K.CANCEL_SCHEDULED: "Subscription will end at the close of the current period",
    K.CANCEL_UNDONE: "Subscription resumed: it will renew",
}


def when(value: datetime | None, fmt: str = DATE_TIME) -> str:
    """A moment in the active time zone (the customer's), with the zone's name."""
    if value is None:
        return ""
    return date_format(timezone.localtime(value), fmt)


def item_line(item) -> str:
    """One ordered line: "3 x Field Guide" (with a times sign), or "Pro membership, per year" for a subscription."""
    if item.recurring_interval:
        line = f"{item.description}, per {item.recurring_interval}"
        return line if item.quantity == 1 else f"{item.quantity} \u00d7 {line}"
    return f"{item.quantity} \u00d7 {item.description}"


def status_label(status: str) -> str:
    return STATUS.get(status, status.replace("_", " ").capitalize())


def status_words(status: str) -> str:
    """The status inside a sentence support reads ("order ord_… is already complete")."""
    return status_label(status).lower()


def subscription_label(status: str, ending: bool = False) -> str:
    if ending and status != "canceled":
        return "Ending"
    return SUBSCRIPTION.get(status, status.replace("_", " ").capitalize())


def history_line(entry: OrderHistory) -> str | None:
    """The customer's words for one history entry; None for internal entries."""
    line = HISTORY.get(entry.kind)
    if line is not None and "{reason}" in line:
        return line.format(reason=DECLINE_REASONS.get(entry.data.get("reason"), DECLINED))
    if line is None or "{date}" not in line:
        return line
    timestamp = entry.data.get("date")
    if not isinstance(timestamp, int):
        return UNDATED[entry.kind]
    return line.format(date=when(datetime.fromtimestamp(timestamp, tz=UTC), DATE))


# A payment made with a method that settles later (a bank debit) has not settled yet.
PAYMENT_SETTLING = (
    "A payment for this order is still being processed by your bank. We will confirm it here "
    "as soon as it settles; please do not pay again."
)


# --- Trouble with the payment service, per thing the customer tried -------------------------

# (Stripe did not answer or failed, Stripe refused the request)
TROUBLE: dict[str, tuple[str, str]] = {
    "pay": (
        "The payment service is not answering; your card was not charged. "
        "Please try again in a minute.",
        "We could not start the payment; your card was not charged. "
        "Please try again later, or contact us if it keeps happening.",
    ),
    "cancel_order": (
        "The payment service is not answering, so the order was not cancelled. "
        "Please try again in a minute.",
        "We could not cancel the order just now. Please try again later.",
    ),
    "subscription": (
        "The payment service is not answering; your subscription was not changed. "
        "Please try again in a minute.",
        "We could not change your subscription just now. Please try again later.",
    ),
}


def trouble(action: str, *, retryable: bool) -> str:
    """What to tell a customer whose ``action`` failed on the payment service's side."""
    outage, refused = TROUBLE[action]
    return outage if retryable else refused


# --- Refunds, as the customer's order page lists them ----------------------------------------


def refund_line(refund) -> str:
    """One refund in plain words: "$5.00 refunded on 12 Jan 2027" (an ``OrderRefund``)."""
    money = format_amount(refund.amount, refund.currency)
    day = when(refund.refunded_at or refund.created_at, DATE)
    if refund.status == "succeeded":
        return f"{money} refunded on {day}"
    if refund.status == "failed":
        return f"A refund of {money} on {day} could not be completed; we will contact you about it"
    return f"{money} refund on its way since {day}; banks take up to 10 days to show it"
