"""Event types the billing boundary keeps mirrored without any business handler.

Business handlers (orders/handlers.py) register their own types; together these are what
webhook endpoints subscribe to.
"""

from billing.consts import EventType as E
from billing.webhooks.registry import register_mirror

register_mirror(
    E.CUSTOMER_CREATED,
    E.CUSTOMER_UPDATED,
    E.CUSTOMER_DELETED,
    E.PRODUCT_CREATED,
    E.PRODUCT_UPDATED,
    E.PRODUCT_DELETED,
    E.PRICE_CREATED,
    E.PRICE_UPDATED,
    E.PRICE_DELETED,
    E.PAYMENT_INTENT_SUCCEEDED,
    E.PAYMENT_INTENT_PAYMENT_FAILED,
    E.PAYMENT_INTENT_CANCELED,
    E.CHARGE_SUCCEEDED,
    E.CHARGE_FAILED,
    E.SUBSCRIPTION_CREATED,
    E.SUBSCRIPTION_UPDATED,
    E.SUBSCRIPTION_DELETED,
)

# Since API version 2025-03-31 an invoice no longer names the payment intent that paid it; its
# payments (included on request, in the same fetch) do. The support console follows them to tie
# a subscription's charges to its order.
register_mirror(
    E.INVOICE_CREATED,
    E.INVOICE_FINALIZED,
    E.INVOICE_UPDATED,
    E.INVOICE_PAID,
    E.INVOICE_PAYMENT_SUCCEEDED,
    E.INVOICE_PAYMENT_FAILED,
    expand=["payments"],
)
