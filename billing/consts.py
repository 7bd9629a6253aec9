"""Stripe's statuses and event types, named once (saleor's ``payment/gateways/stripe/consts.py``):
a typo in one is an ``AttributeError`` at import, not a branch that silently never runs."""

from __future__ import annotations


class SessionStatus:
    OPEN = "open"
    COMPLETE = "complete"
    EXPIRED = "expired"


class SessionPaymentStatus:
    PAID = "paid"
    UNPAID = "unpaid"
    NO_PAYMENT_REQUIRED = "no_payment_required"
    SETTLED = (PAID, NO_PAYMENT_REQUIRED)  # nothing more to collect


class IntentStatus:
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    CANCELED = "canceled"
    SUCCEEDED = "succeeded"
    UNPAID = (REQUIRES_PAYMENT_METHOD, CANCELED)  # an attempt that failed or was given up


class ChargeStatus:
    SUCCEEDED = "succeeded"
    PENDING = "pending"
    FAILED = "failed"


class InvoiceStatus:
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    UNCOLLECTIBLE = "uncollectible"
    VOID = "void"


class SubscriptionStatus:
    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"
    UNPAID = "unpaid"
    PAUSED = "paused"


class RefundStatus:
    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    ACTIVE = (PENDING, REQUIRES_ACTION, SUCCEEDED)  # money on its way back, or back
    REASONS = ("requested_by_customer", "duplicate", "fraudulent")  # what a refund may give


class DisputeStatus:
    WARNING_NEEDS_RESPONSE = "warning_needs_response"  # an inquiry
    WARNING_UNDER_REVIEW = "warning_under_review"
    WARNING_CLOSED = "warning_closed"
    NEEDS_RESPONSE = "needs_response"  # a chargeback: funds withdrawn
    UNDER_REVIEW = "under_review"
    WON = "won"
    LOST = "lost"
    PREVENTED = "prevented"
    NEEDS_RESPONSE_ANY = (WARNING_NEEDS_RESPONSE, NEEDS_RESPONSE)  # evidence is due
    OPEN = (*NEEDS_RESPONSE_ANY, WARNING_UNDER_REVIEW, UNDER_REVIEW)


class EventType:
    """The event types the product subscribes to (what some code handles, never ``*``)."""

    CHECKOUT_SESSION_COMPLETED = "checkout.session.completed"
    CHECKOUT_SESSION_ASYNC_PAYMENT_SUCCEEDED = "checkout.session.async_payment_succeeded"
    CHECKOUT_SESSION_ASYNC_PAYMENT_FAILED = "checkout.session.async_payment_failed"
    CHECKOUT_SESSION_EXPIRED = "checkout.session.expired"
    CUSTOMER_CREATED = "customer.created"
    CUSTOMER_UPDATED = "customer.updated"
    CUSTOMER_DELETED = "customer.deleted"
    PRODUCT_CREATED = "product.created"
    PRODUCT_UPDATED = "product.updated"
    PRODUCT_DELETED = "product.deleted"
    PRICE_CREATED = "price.created"
    PRICE_UPDATED = "price.updated"
    PRICE_DELETED = "price.deleted"
    PAYMENT_INTENT_SUCCEEDED = "payment_intent.succeeded"
    PAYMENT_INTENT_PAYMENT_FAILED = "payment_intent.payment_failed"
    PAYMENT_INTENT_CANCELED = "payment_intent.canceled"
    CHARGE_SUCCEEDED = "charge.succeeded"
    CHARGE_FAILED = "charge.failed"
    CHARGE_REFUNDED = "charge.refunded"
    REFUND_CREATED = "refund.created"
    REFUND_UPDATED = "refund.updated"
    REFUND_FAILED = "refund.failed"
    CHARGE_DISPUTE_CREATED = "charge.dispute.created"
    CHARGE_DISPUTE_UPDATED = "charge.dispute.updated"
    CHARGE_DISPUTE_CLOSED = "charge.dispute.closed"
    CHARGE_DISPUTE_FUNDS_WITHDRAWN = "charge.dispute.funds_withdrawn"
    CHARGE_DISPUTE_FUNDS_REINSTATED = "charge.dispute.funds_reinstated"
    SUBSCRIPTION_CREATED = "customer.subscription.created"
    SUBSCRIPTION_UPDATED = "customer.subscription.updated"
    SUBSCRIPTION_DELETED = "customer.subscription.deleted"
    INVOICE_CREATED = "invoice.created"
    INVOICE_FINALIZED = "invoice.finalized"
    INVOICE_UPDATED = "invoice.updated"
    INVOICE_PAID = "invoice.paid"
    INVOICE_PAYMENT_SUCCEEDED = "invoice.payment_succeeded"
    INVOICE_PAYMENT_FAILED = "invoice.payment_failed"
