"""Business actions on orders, by concern: the state (``state``: transitions, history, the
order an object names), the catalog, checkout, payments as records (``payments``: a Checkout
Session's outcome; ``invoices``: a subscription's invoices and payment intents made by hand;
``refunds`` and ``refund_console``: refunds as records, and made from the console;
``disputes``), cancellation and subscriptions. Stripe calls go through ``billing.stripe_api`` only, mirror writes
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
from orders.services.disputes import dispute_note, dispute_record
from orders.services.flags import order_payments_resolve
from orders.services.invoices import intent_unrecorded, order_intent_record, order_invoice_paid
from orders.services.payments import order_session_apply
from orders.services.refund_console import (
    RefundRefused,
    order_refund,
    refund_approve,
    refund_reject,
)
from orders.services.refunds import order_refund_sync, refund_record, refunds_resolve
from orders.services.state import CheckoutError, TransitionRefused, order_transition
from orders.services.subscriptions import (
    order_subscription_cancel,
    order_subscription_resume,
    order_subscription_sync,
)

__all__ = [
    "CheckoutError",
    "PaymentStep",
    "RefundRefused",
    "TransitionRefused",
    "catalog_sync",
    "customer_time_zone_set",
    "dispute_note",
    "dispute_record",
    "intent_unrecorded",
    "order_cancel",
    "order_charge_declined",
    "order_checkout_start",
    "order_create",
    "order_intent_record",
    "order_invoice_paid",
    "order_payment_start",
    "order_payments_resolve",
    "order_refund",
    "order_refund_sync",
    "order_return_check",
    "order_session_apply",
    "order_subscription_cancel",
    "order_subscription_resume",
    "order_subscription_sync",
    "order_transition",
    "refund_approve",
    "refund_record",
    "refund_reject",
    "refunds_resolve",
]
