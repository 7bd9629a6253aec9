"""The Stripe object types the product knows: one registry, from which every per-type table
derives (the API path stripe-python calls, the id prefixes a person pastes, the dj-stripe model
that mirrors it, its path in Stripe's Dashboard, the events about it, how the backfill lists it).

Adding a type is one entry here; nothing else keeps a list of types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType
from typing import Any

from django.apps import apps


@dataclass(frozen=True)
class StripeType:
    name: str  # Stripe's ``object`` value: "checkout.session"
    api: str = ""  # stripe-python's service under ``client.v1``: "checkout.sessions"
    prefixes: tuple[str, ...] = ()  # ids a person may paste: ("cs_",)
    model: str = ""  # the dj-stripe model mirroring it ("" when not mirrored)
    dashboard: str = ""  # its path in Stripe's Dashboard
    # Event types about it, when not "<name>.…" ("customer.subscription.updated").
    event_prefixes: tuple[str, ...] = ()
    list_item: bool = False  # mirrored only as an item of another object's nested list
    support_reads: bool = False  # its console pages are Support's to read
    # The backfill lists it (in this registry's order: what an object points at comes first),
    # with these expansions and list parameters.
    backfill: bool = False
    list_expand: tuple[str, ...] = ()
    list_params: Mapping[str, Any] = field(default_factory=dict)


# The order is the backfill's: a price's product, a subscription's customer and prices, an
# invoice's subscription, a charge's payment intent, a refund's and a dispute's charge, a
# session's customer, payment intent and subscription are mirrored first, so dj-stripe finds
# their rows instead of fetching them. Payment methods have no list of their own (Stripe lists
# them per customer): they come expanded where they are used.
TYPES: tuple[StripeType, ...] = (
    StripeType("account", "accounts", ("acct_",)),
    StripeType("product", "products", ("prod_",), "Product", "products", support_reads=True,
               backfill=True),
    StripeType("price", "prices", ("price_",), "Price", "prices", support_reads=True,
               backfill=True),
    StripeType("customer", "customers", ("cus_",), "Customer", "customers", support_reads=True,
               backfill=True, list_expand=("data.invoice_settings.default_payment_method",)),
    # Stripe leaves canceled subscriptions out of its list unless asked for every status.
    StripeType("subscription", "subscriptions", ("sub_",), "Subscription", "subscriptions",
               event_prefixes=("customer.subscription.",), support_reads=True, backfill=True,
               list_expand=("data.default_payment_method",), list_params={"status": "all"}),
    StripeType("invoice", "invoices", ("in_",), "Invoice", "invoices", support_reads=True,
               backfill=True, list_expand=("data.default_payment_method",)),
    StripeType("payment_intent", "payment_intents", ("pi_",), "PaymentIntent", "payments",
               support_reads=True, backfill=True, list_expand=("data.payment_method",)),
    # A charge carries its refunds (each with a balance transaction dj-stripe would fetch).
    StripeType("charge", "charges", ("ch_", "py_"), "Charge", "payments", support_reads=True,
               backfill=True,
               list_expand=("data.balance_transaction", "data.refunds.data.balance_transaction")),
    StripeType("refund", "refunds", ("re_", "pyr_"), "Refund", "refunds",
               event_prefixes=("refund.", "charge.refund."), support_reads=True, backfill=True,
               # a failed refund's failure transaction too: dj-stripe fetches it otherwise
               list_expand=("data.balance_transaction", "data.failure_balance_transaction")),
    # Stripe's ids: du_ (dp_ for older disputes); its balance transactions come whole.
    StripeType("dispute", "disputes", ("du_", "dp_"), "Dispute", "disputes",
               event_prefixes=("charge.dispute.",), support_reads=True, backfill=True),
    StripeType("checkout.session", "checkout.sessions", ("cs_",), "Session",
               "checkout/sessions", support_reads=True, backfill=True),
    StripeType("payment_method", "payment_methods", ("pm_",), "PaymentMethod"),
    StripeType("balance_transaction", "balance_transactions", ("txn_",)),
    StripeType("webhook_endpoint", "webhook_endpoints", ("we_",), "WebhookEndpoint", "webhooks"),
    StripeType("event", "events", ("evt_",), dashboard="events"),
    StripeType("line_item", model="LineItem", list_item=True),
    StripeType("subscription_item", model="SubscriptionItem", list_item=True),
)  # fmt: skip
BY_NAME: Mapping[str, StripeType] = MappingProxyType({t.name: t for t in TYPES})


def get(name: str) -> StripeType | None:
    return BY_NAME.get(name)


def for_id(stripe_id: str) -> str | None:
    """The type of a Stripe id by its prefix (ids a person pastes into a search box)."""
    for stripe_type in TYPES:
        if stripe_id.startswith(stripe_type.prefixes):
            return stripe_type.name
    return None


def for_event(event_type: str) -> str:
    """The type of an event's object: ``invoice.paid`` is about an invoice,
    ``customer.subscription.updated`` about a subscription."""
    for stripe_type in TYPES:
        if stripe_type.event_prefixes and event_type.startswith(stripe_type.event_prefixes):
            return stripe_type.name
    return event_type.rsplit(".", 1)[0]


@cache
def models(*, list_items: bool = False) -> Mapping[str, type]:
    """Type -> the dj-stripe model mirroring it (with ``list_items``: the models of nested
    lists' items too)."""
    return MappingProxyType(
        {
            t.name: apps.get_model("djstripe", t.model)
            for t in TYPES
            if t.model and (list_items or not t.list_item)
        }
    )


def model_for(name: str) -> type | None:
    return models().get(name)


def backfilled() -> tuple[StripeType, ...]:
    return tuple(t for t in TYPES if t.backfill)
