"""Every object type the emulator emits has the top-level keys of Stripe's own example.

Stripe's examples come from `../shared/stripe/fixtures3.json` (next to the repository, not
in it); the test skips when that folder is absent, as in a fresh clone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "stripe" / "fixtures3.json"

# Deliberate differences, by object type: keys we add (+) or leave out (-), and why.
DIFFERENCES: dict[str, dict[str, set[str]]] = {
    # Includable fields: absent unless asked for with expand[]; the test expands them to
    # reach the nested `item` and `invoice_payment` objects, so they appear here. Stripe's
    # examples show the default response, without them.
    "checkout.session": {"+": {"line_items"}},
    "invoice": {"+": {"payments"}},
    # Stripe returns the warning's payment intent (stripe-python 15 has the field); the
    # published example predates it.
    "radar.early_fraud_warning": {"+": {"payment_intent"}},
}


@pytest.fixture(scope="module")
def stripe_examples() -> dict[str, dict]:
    if not FIXTURES.exists():
        pytest.skip(f"Stripe's fixtures are not available at {FIXTURES}")
    return json.loads(FIXTURES.read_text())["resources"]


def _collect(value, found: dict[str, dict]) -> None:
    """Every nested object with an `object` type, first occurrence per type."""
    if isinstance(value, dict):
        kind = value.get("object")
        if isinstance(kind, str) and kind not in ("list", "search_result"):
            key = f"deleted_{kind}" if value.get("deleted") else kind
            found.setdefault(key, value)
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, list):
        for item in value:
            _collect(item, found)


@pytest.fixture
def emitted(client, paid_flows) -> dict[str, dict]:
    """Drive every flow, then gather objects from events and API reads."""
    found: dict[str, dict] = {}
    for card in ("pm_card_createDispute", "pm_card_createIssuerFraudRecord"):
        client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd", "payment_method": card, "confirm": True}
        )
    pay, sub, endpoint = paid_flows.pay, paid_flows.sub, paid_flows.endpoint
    session = client.v1.checkout.sessions.retrieve(pay.id, params={"expand": ["line_items"]})
    refund = client.v1.refunds.create(params={"payment_intent": session.payment_intent})
    invoice = client.v1.invoices.retrieve(sub.invoice, params={"expand": ["payments"]})
    client.v1.subscriptions.cancel(sub.subscription)
    deleted = client.v1.customers.create()
    client.v1.customers.delete(deleted.id)
    for obj in [
        session,
        refund,
        invoice,
        client.v1.accounts.retrieve_current(),
        client.v1.webhook_endpoints.retrieve(endpoint.id),
        client.v1.customers.retrieve(deleted.id),
        client.v1.webhook_endpoints.delete(endpoint.id),
        *client.v1.events.list(params={"limit": 100}).data,
    ]:
        _collect(obj.to_dict(), found)
    return found


EXPECTED_TYPES = {
    "account",
    "balance_transaction",
    "charge",
    "checkout.session",
    "customer",
    "deleted_customer",
    "deleted_webhook_endpoint",
    "dispute",
    "event",
    "invoice",
    "invoice_payment",
    "item",
    "line_item",
    "payment_intent",
    "payment_method",
    "plan",
    "price",
    "product",
    "radar.early_fraud_warning",
    "refund",
    "subscription",
    "subscription_item",
    "webhook_endpoint",
}


def test_every_emitted_type_matches_stripes_keys(stripe_examples, emitted):
    assert emitted.keys() >= EXPECTED_TYPES
    mismatches = {}
    for kind, obj in sorted(emitted.items()):
        example = stripe_examples.get(kind)
        assert example is not None, f"no Stripe example for {kind}"
        ours, theirs = set(obj), set(example)
        allowed = DIFFERENCES.get(kind, {})
        extra = ours - theirs - allowed.get("+", set())
        missing = theirs - ours - allowed.get("-", set())
        if extra or missing:
            mismatches[kind] = {"extra": sorted(extra), "missing": sorted(missing)}
    assert mismatches == {}
