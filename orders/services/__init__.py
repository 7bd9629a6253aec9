"""Business actions on orders, by concern: the state machine, the catalog, checkout, payment
outcomes and subscriptions. Stripe calls go through ``billing.stripe_api`` only, mirror writes
through ``billing.mirror``. The public actions are importable from here.
"""

from orders.services.account import customer_time_zone_set
from orders.services.cancellation import order_cancel
from orders.services.catalog import catalog_sync
from orders.services.checkout import (
    PaymentStep,
    order_checkout_start,
    order_create,
    order_payment_start,
    order_return_check,
)
from orders.services.payments import (
    intent_unrecorded,
    order_fulfil,
    order_intent_record,
    order_invoice_paid,
    order_payments_resolve,
    order_refund_sync,
)
from orders.services.state import CheckoutError, TransitionRefused, order_transition
from orders.services.subscriptions import (
    order_subscription_cancel,
    order_subscription_resume,
    order_subscription_sync,
)

__all__ = [
    "CheckoutError",
    "PaymentStep",
    "TransitionRefused",
    "catalog_sync",
    "customer_time_zone_set",
    "intent_unrecorded",
    "order_cancel",
    "order_checkout_start",
    "order_create",
    "order_fulfil",
    "order_intent_record",
    "order_invoice_paid",
    "order_payment_start",
    "order_payments_resolve",
    "order_refund_sync",
    "order_return_check",
    "order_subscription_cancel",
    "order_subscription_resume",
    "order_subscription_sync",
    "order_transition",
]
