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
from .disputes import EVIDENCE_FIELDS, dispute, early_fraud_warning
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
from .v2 import event_destination, eventbridge, iso, thin_notification, v2_event, v2_list

__all__ = [
    "ACCOUNT_ID",
    "EVIDENCE_FIELDS",
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
    "dispute",
    "early_fraud_warning",
    "event",
    "event_destination",
    "eventbridge",
    "invoice",
    "invoice_line",
    "invoice_payment",
    "iso",
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
    "thin_notification",
    "us_bank_account_details",
    "v2_event",
    "v2_list",
    "webhook_endpoint",
]
