"""Business actions on orders, by concern: the state (``state``: transitions, history, the
order an object names), the catalog, checkout, payments as records (``payments``: a Checkout
Session's outcome; ``invoices``: a subscription's invoices and payment intents made by hand;
``refunds``), cancellation and subscriptions. Stripe calls go through ``billing.stripe_api`` only, mirror writes
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
from orders.services.declines import order_charge_declined
from orders.services.flags import order_payments_resolve
from orders.services.invoices import intent_unrecorded, order_intent_record, order_invoice_paid
from orders.services.payments import order_session_apply
from orders.services.refunds import order_refund_sync
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
    "order_charge_declined",
    "order_checkout_start",
    "order_create",
    "order_intent_record",
    "order_invoice_paid",
    "order_payment_start",
    "order_payments_resolve",
    "order_refund_sync",
    "order_return_check",
    "order_session_apply",
    "order_subscription_cancel",
    "order_subscription_resume",
    "order_subscription_sync",
    "order_transition",
]
