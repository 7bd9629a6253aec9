"""Event types the billing boundary keeps mirrored without any business handler.

Business handlers (orders/handlers.py) register their own types; together these are what
webhook endpoints subscribe to.
"""

from billing.webhooks.registry import register_mirror

register_mirror(
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "product.created",
    "product.updated",
    "product.deleted",
    "price.created",
    "price.updated",
    "price.deleted",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "charge.succeeded",
    "charge.failed",
    "refund.created",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)

# Since API version 2025-03-31 an invoice no longer names the payment intent that paid it; its
# payments (included on request, in the same fetch) do. The support console follows them to tie
# a subscription's charges to its order.
register_mirror(
    "invoice.created",
    "invoice.finalized",
    "invoice.updated",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    expand=["payments"],
)
