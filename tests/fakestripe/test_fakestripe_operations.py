"""What operators' tools and dj-stripe's bulk sync need from the emulator: the 30-day events
window, connected accounts and legacy sources (empty), expandable price fields, 429s as
Stripe shapes them, and fast seeding of a business's history.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest
import stripe


def control(fakestripe, method: str, path: str, params: dict | None = None):
    data = urlencode(params or {}).encode() if method == "POST" else None
    url = fakestripe.url + path + (f"?{urlencode(params)}" if params and method == "GET" else "")
    request = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def raw_get(fakestripe, path: str):
    request = urllib.request.Request(
        fakestripe.url + path, headers={"Authorization": "Bearer sk_test_fakestripe"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


# -- 429s --------------------------------------------------------------------------------


def test_rate_limited_answer_is_shaped_as_stripes(fakestripe):
    fakestripe.set_faults(rate_limit=1)
    assert raw_get(fakestripe, "/v1/customers")[0] == 200

    status, headers, body = raw_get(fakestripe, "/v1/customers")

    assert status == 429
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == "rate_limit"
    assert body["error"]["doc_url"] == "https://stripe.com/docs/error-codes/rate-limit"
    assert body["error"]["message"].startswith("Request rate limit exceeded.")
    assert headers["Stripe-Rate-Limited-Reason"] == "global-rate"
    assert headers["Request-Id"].startswith("req_")
    # Stripe neither asks for a retry nor says when: stripe-python therefore does not retry.
    assert headers.get("Stripe-Should-Retry") is None
    assert headers.get("Retry-After") is None


def test_stripe_python_does_not_retry_a_rate_limit(client, fakestripe):
    retrying = stripe.StripeClient(
        "sk_test_fakestripe", base_addresses={"api": fakestripe.url}, max_network_retries=3
    )
    fakestripe.set_faults(rate_limit=1)
    retrying.v1.customers.list()
    fakestripe.reset_stats()

    with pytest.raises(stripe.RateLimitError):
        retrying.v1.customers.list()

    assert fakestripe.stats()["total"] == 1


def test_retry_after_is_sent_only_when_the_fault_asks(fakestripe):
    fakestripe.set_faults(rate_limit=1, rate_limit_retry_after=2)
    raw_get(fakestripe, "/v1/customers")
    status, headers, _ = raw_get(fakestripe, "/v1/customers")
    assert status == 429
    assert headers["Retry-After"] == "2"


# -- routes dj-stripe's djstripe_sync_models calls ----------------------------------------


def test_connected_accounts_list_is_empty_and_own_account_retrievable(client):
    assert client.v1.accounts.list().data == []
    own = client.v1.accounts.retrieve_current()
    assert client.v1.accounts.retrieve(own.id).id == own.id
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.accounts.retrieve("acct_someoneelse")
    assert info.value.http_status == 404


def test_customer_sources_are_an_empty_list(client):
    customer = client.v1.customers.create(params={"email": "src@example.com"})
    for kind in ("card", "bank_account"):
        page = client.v1.customers.payment_sources.list(customer.id, params={"object": kind})
        assert page.data == [] and page.has_more is False
        assert page.url == f"/v1/customers/{customer.id}/sources"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.payment_sources.list("cus_missing")
    assert info.value.http_status == 404


def test_price_currency_options_and_tiers_expand(client):
    price = client.v1.prices.create(
        params={"currency": "eur", "unit_amount": 1200, "product_data": {"name": "Box"}}
    )
    assert "currency_options" not in client.v1.prices.retrieve(price.id)

    expanded = client.v1.prices.retrieve(price.id, params={"expand": ["currency_options"]})
    assert expanded.currency_options.to_dict() == {
        "eur": {
            "custom_unit_amount": None,
            "tax_behavior": "unspecified",
            "unit_amount": 1200,
            "unit_amount_decimal": "1200",
        }
    }
    listed = client.v1.prices.list(params={"expand": ["data.currency_options", "data.tiers"]})
    assert listed.data[0].currency_options["eur"]["unit_amount"] == 1200
    assert listed.data[0].tiers is None


# -- the events window ---------------------------------------------------------------------


def test_events_list_goes_back_30_days_only(client, fakestripe):
    client.v1.customers.create(params={"email": "old@example.com"})
    (old_event,) = client.v1.events.list().data
    aged = control(fakestripe, "POST", "/_fake/events/age", {"days": 31})
    assert aged == {"aged": 1, "days": 31}
    new = client.v1.customers.create(params={"email": "new@example.com"})

    listed = client.v1.events.list(params={"created": {"gte": 0}, "limit": 100}).data

    assert [e.data.object.id for e in listed] == [new.id]
    # Retrieving by id still works; only the list is limited to 30 days.
    assert client.v1.events.retrieve(old_event.id).created == old_event.created - 31 * 86400


def test_aging_needs_a_positive_number_of_days(fakestripe):
    with pytest.raises(urllib.error.HTTPError) as info:
        control(fakestripe, "POST", "/_fake/events/age", {"days": 0})
    assert info.value.code == 400


# -- seeding -------------------------------------------------------------------------------


def test_bulk_seed_makes_linked_paid_history_without_events(client, fakestripe):
    answer = control(fakestripe, "POST", "/_fake/bulk/seed", {"customers": 30})

    created = answer["created"]
    assert created["customer"] == 30
    assert created["subscription"] == 10  # every third customer
    assert created["invoice"] == 10 + 10  # a first invoice each, one renewal each
    assert created["payment_intent"] == created["charge"] == 30 + 20
    assert control(fakestripe, "GET", "/_fake/objects/counts")["customer"] == 30
    assert client.v1.events.list().data == []
    # Real shapes and links: a subscription's invoices are paid by intents with charges.
    sub = client.v1.subscriptions.list(params={"limit": 1}).data[0]
    assert sub.status == "active"
    invoices = client.v1.invoices.list(params={"subscription": sub.id}).data
    assert {i.status for i in invoices} == {"paid"}
    charge = client.v1.charges.list(params={"limit": 1, "expand": ["data.payment_intent"]}).data[0]
    assert charge.status == "succeeded" and charge.payment_intent.status == "succeeded"
    assert charge.customer == charge.payment_intent.customer


def test_bulk_seed_validates_its_counts(fakestripe):
    with pytest.raises(urllib.error.HTTPError) as info:
        control(fakestripe, "POST", "/_fake/bulk/seed", {"customers": 0})
    assert info.value.code == 400
