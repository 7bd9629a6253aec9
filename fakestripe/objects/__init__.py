"""Builders for each Stripe object, with the top-level keys of Stripe's current API shape.

Shapes only: no state, no events, no routes.

Shapes follow Stripe's published fixtures and stripe-python 15's typed classes at
2026-08-26.dahlia. Fields the emulator has no behaviour for keep Stripe's null/empty values.
Keys starting with "_" are emulator-private and never rendered. Behaviour (routes, state
changes, events) lives in the modules one level up, which call these by `objects.<name>`.
"""

from .billing import invoice, invoice_line, invoice_payment, subscription, subscription_item
from .catalog import customer, plan_from_price, price, product
from .checkout import checkout_line_item, checkout_session, customer_details
from .common import (
    ACCOUNT_ID,
    ZERO_DECIMAL,
    account,
    add_interval,
    address,
    billing_details,
    deleted,
    event,
    list_object,
    search_result,
    webhook_endpoint,
)
from .payments import (
    TEST_ROUTING_NUMBER,
    balance_transaction,
    bank_payment_method,
    card_details,
    charge,
    payment_intent,
    payment_method,
    refund,
    us_bank_account_details,
)

__all__ = [
    "ACCOUNT_ID",
    "TEST_ROUTING_NUMBER",
    "ZERO_DECIMAL",
    "account",
    "add_interval",
    "address",
    "balance_transaction",
    "bank_payment_method",
    "billing_details",
    "card_details",
    "charge",
    "checkout_line_item",
    "checkout_session",
    "customer",
    "customer_details",
    "deleted",
    "event",
    "invoice",
    "invoice_line",
    "invoice_payment",
    "list_object",
    "payment_intent",
    "payment_method",
    "plan_from_price",
    "price",
    "product",
    "refund",
    "search_result",
    "subscription",
    "subscription_item",
    "us_bank_account_details",
    "webhook_endpoint",
]
