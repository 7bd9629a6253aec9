"""stripe-python against the emulator: auth, errors, idempotency, lists, expand, metadata,
search, and the simple resources (customers, products, prices, events, webhook endpoints).
"""

from __future__ import annotations

import base64
import itertools
import json
import time
import urllib.error
import urllib.request

import pytest
import stripe

from fakestripe import DEFAULT_API_VERSION

KEY = "sk_test_fakestripe"


def raw(url: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


# -- authentication and errors ------------------------------------------------------------


def test_requests_without_a_key_are_401_with_request_id(fakestripe):
    status, headers, body = raw(fakestripe.url + "/v1/customers")
    assert status == 401
    assert headers["Request-Id"].startswith("req_")
    assert "You did not provide an API key" in body["error"]["message"]


def test_publishable_keys_are_refused(fakestripe):
    client = stripe.StripeClient(
        "pk_test_nope", base_addresses={"api": fakestripe.url}, max_network_retries=0
    )
    with pytest.raises(stripe.AuthenticationError, match="publishable API key"):
        client.v1.customers.list()


def test_unknown_keys_are_refused(fakestripe):
    client = stripe.StripeClient(
        "sk_live_real", base_addresses={"api": fakestripe.url}, max_network_retries=0
    )
    with pytest.raises(stripe.AuthenticationError, match="Invalid API Key"):
        client.v1.customers.list()


def test_basic_auth_as_curl_sends_it(fakestripe):
    token = base64.b64encode(f"{KEY}:".encode()).decode()
    status, headers, body = raw(
        fakestripe.url + "/v1/customers", headers={"Authorization": f"Basic {token}"}
    )
    assert status == 200
    assert body["object"] == "list"
    assert headers["Request-Id"].startswith("req_")


def test_missing_object_is_resource_missing_404(client):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.retrieve("cus_missing")
    assert info.value.http_status == 404
    assert info.value.code == "resource_missing"
    assert info.value.error.message == "No such customer: 'cus_missing'"
    assert info.value.request_id.startswith("req_")


def test_unknown_parameters_are_400(client):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.create(params={"emial": "x@example.com"})
    assert info.value.http_status == 400
    assert info.value.param == "emial"


def test_unrecognised_urls_are_404(fakestripe):
    status, _, body = raw(
        fakestripe.url + "/v1/nothing", headers={"Authorization": f"Bearer {KEY}"}
    )
    assert status == 404
    assert body["error"]["message"].startswith("Unrecognized request URL (GET: /v1/nothing)")


def test_account(client):
    account = client.v1.accounts.retrieve_current()
    assert account.id.startswith("acct_")
    assert account.object == "account"


# -- versions and counters ----------------------------------------------------------------


def test_stripe_version_is_honoured_and_counted(fakestripe, client):
    pinned = stripe.StripeClient(
        KEY,
        base_addresses={"api": fakestripe.url},
        stripe_version="2024-06-20",
        max_network_retries=0,
    )
    customer = client.v1.customers.create()
    pinned.v1.customers.retrieve(customer.id)
    _, headers, _ = raw(
        fakestripe.url + f"/v1/customers/{customer.id}", headers={"Authorization": f"Bearer {KEY}"}
    )
    assert headers["Stripe-Version"] == DEFAULT_API_VERSION
    stats = fakestripe.stats()
    assert stats["by_version"] == {DEFAULT_API_VERSION: 2, "2024-06-20": 1}
    assert stats["by_route"] == {"POST /v1/customers": 1, "GET /v1/customers/{id}": 2}
    assert stats["total"] == 3


# -- idempotency ------------------------------------------------------------------------------


def test_idempotent_replay_returns_the_first_answer(client, fakestripe):
    first = client.v1.customers.create(
        params={"email": "a@example.com"}, options={"idempotency_key": "key-1"}
    )
    again = client.v1.customers.create(
        params={"email": "a@example.com"}, options={"idempotency_key": "key-1"}
    )
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert len(client.v1.customers.list().data) == 1


def test_idempotency_key_with_other_parameters_is_an_error(client):
    client.v1.customers.create(
        params={"email": "a@example.com"}, options={"idempotency_key": "key-2"}
    )
    with pytest.raises(stripe.IdempotencyError, match="same parameters"):
        client.v1.customers.create(
            params={"email": "b@example.com"}, options={"idempotency_key": "key-2"}
        )


def test_idempotency_keys_are_scoped_per_api_key(client, fakestripe):
    other = stripe.StripeClient(
        "sk_test_other", base_addresses={"api": fakestripe.url}, max_network_retries=0
    )
    first = client.v1.customers.create(options={"idempotency_key": "shared"})
    second = other.v1.customers.create(options={"idempotency_key": "shared"})
    assert first.id != second.id


def test_validation_errors_are_not_remembered(client):
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.products.create(params={}, options={"idempotency_key": "k3"})
    # The same key may be used again once the parameters are fixed.
    created = client.v1.products.create(params={"name": "ok"}, options={"idempotency_key": "k3"})
    assert created.name == "ok"


# -- lists --------------------------------------------------------------------------------


@pytest.fixture
def customers(client):
    return [client.v1.customers.create(params={"email": f"c{i}@example.com"}) for i in range(25)]


def test_lists_are_newest_first_with_cursors(client, customers):
    ids = [c.id for c in reversed(customers)]  # newest first
    page = client.v1.customers.list(params={"limit": 10})
    assert [c.id for c in page.data] == ids[:10]
    assert page.has_more is True
    assert page.url == "/v1/customers"
    page2 = client.v1.customers.list(params={"limit": 10, "starting_after": ids[9]})
    assert [c.id for c in page2.data] == ids[10:20]
    back = client.v1.customers.list(params={"limit": 5, "ending_before": ids[10]})
    assert [c.id for c in back.data] == ids[5:10]
    assert back.has_more is True
    last = client.v1.customers.list(params={"limit": 10, "starting_after": ids[19]})
    assert [c.id for c in last.data] == ids[20:] and last.has_more is False


def test_auto_paging_in_both_directions(client, customers):
    ids = [c.id for c in reversed(customers)]
    forward = client.v1.customers.list(params={"limit": 7}).auto_paging_iter()
    assert [c.id for c in forward] == ids
    backward = client.v1.customers.list(params={"limit": 7, "ending_before": ids[-1]})
    assert [c.id for c in backward.auto_paging_iter()] == list(reversed(ids[:-1]))


@pytest.mark.parametrize("limit", [0, 101])
def test_limit_out_of_range_is_400(client, limit):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.list(params={"limit": limit})
    assert info.value.param == "limit"


def test_filters_and_created_ranges(client, customers):
    assert [c.email for c in client.v1.customers.list(params={"email": "c3@example.com"})] == [
        "c3@example.com"
    ]
    created = customers[0].created
    assert (
        len(client.v1.customers.list(params={"created": {"gte": created}, "limit": 100}).data) == 25
    )
    assert client.v1.customers.list(params={"created": {"gt": created + 3600}}).data == []
    assert len(client.v1.customers.list(params={"created": created, "limit": 100}).data) >= 1


def test_unknown_cursor_is_an_error(client):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.list(params={"starting_after": "cus_nope"})
    assert info.value.param == "starting_after"


# -- customers and deletion -------------------------------------------------------------------


def test_customer_lifecycle(client):
    customer = client.v1.customers.create(
        params={"email": "x@example.com", "name": "X", "metadata": {"user_id": "7"}}
    )
    assert customer.id.startswith("cus_") and customer.livemode is False
    updated = client.v1.customers.update(customer.id, params={"name": "Y"})
    assert updated.name == "Y" and updated.metadata.to_dict() == {"user_id": "7"}
    deleted = client.v1.customers.delete(customer.id)
    assert deleted.deleted is True and deleted.id == customer.id
    # Stripe keeps answering for a deleted customer with the deleted stub.
    stub = client.v1.customers.retrieve(customer.id)
    assert stub.deleted is True
    assert client.v1.customers.list().data == []
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update(customer.id, params={"name": "Z"})


# -- metadata ---------------------------------------------------------------------------------


def test_metadata_merges_deletes_and_clears(client):
    customer = client.v1.customers.create(params={"metadata": {"a": "1", "b": "2"}})
    merged = client.v1.customers.update(customer.id, params={"metadata": {"c": "3", "a": ""}})
    assert merged.metadata.to_dict() == {"b": "2", "c": "3"}
    cleared = client.v1.customers.update(customer.id, params={"metadata": ""})
    assert cleared.metadata.to_dict() == {}


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({f"k{i}": "v" for i in range(51)}, "up to 50 metadata keys"),
        ({"k" * 41: "v"}, "Metadata keys can have up to 40 characters"),
        ({"k": "v" * 501}, "Metadata values can have up to 500 characters"),
        ({"a[b": "v"}, "square brackets"),
    ],
)
def test_metadata_limits(client, metadata, message):
    with pytest.raises(stripe.InvalidRequestError, match=message.replace("[", r"\[")):
        client.v1.customers.create(params={"metadata": metadata})


def test_metadata_limit_counts_existing_keys(client):
    customer = client.v1.customers.create(params={"metadata": {f"k{i}": "v" for i in range(50)}})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update(customer.id, params={"metadata": {"one_more": "v"}})
    ok = client.v1.customers.update(customer.id, params={"metadata": {"k0": "", "new": "v"}})
    assert len(ok.metadata.to_dict()) == 50


# -- expand ---------------------------------------------------------------------------------


def test_expand_on_retrieve_create_update_and_list(client):
    customer = client.v1.customers.create(params={"email": "e@example.com"})
    intent = client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "usd", "customer": customer.id, "expand": ["customer"]}
    )
    assert intent.customer.email == "e@example.com"
    again = client.v1.payment_intents.retrieve(intent.id, params={"expand": ["customer"]})
    assert again.customer.id == customer.id
    updated = client.v1.payment_intents.update(
        intent.id, params={"description": "d", "expand": ["customer"]}
    )
    assert updated.customer.id == customer.id
    listed = client.v1.payment_intents.list(params={"expand": ["data.customer"]})
    assert listed.data[0].customer.id == customer.id
    plain = client.v1.payment_intents.retrieve(intent.id)
    assert plain.customer == customer.id
    with pytest.raises(stripe.InvalidRequestError, match=r"try expanding 'data\.customer'"):
        client.v1.payment_intents.list(params={"expand": ["customer"]})


def test_expand_four_levels_ok_five_refused(client, fakestripe):
    price = client.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 500,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Plan"},
        }
    )
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "success_url": "http://127.0.0.1/ok",
            "line_items": [{"price": price.id, "quantity": 1}],
        }
    )
    fakestripe.complete_checkout(session.id)
    deep = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["invoice.parent.subscription_details.subscription"]}
    )
    assert deep.invoice.parent.subscription_details.subscription.object == "subscription"
    four = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["subscription.latest_invoice.customer"]}
    )
    assert four.subscription.latest_invoice.customer.object == "customer"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.retrieve(
            session.id, params={"expand": ["subscription.items.data.price.product"]}
        )
    assert info.value.code == "property_expansion_max_depth"
    assert "You cannot expand more than 4 levels of a property" in str(info.value)
    with pytest.raises(stripe.InvalidRequestError, match="cannot be expanded"):
        client.v1.customers.retrieve(deep.customer, params={"expand": ["email"]})


def test_includable_lists_and_arrays_of_ids_expand(client, fakestripe):
    """What dj-stripe asks for: a charge's `refunds`, a session's line item discounts and
    `total_details.breakdown`."""
    intent = client.v1.payment_intents.create(
        params={"amount": 500, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    charge = client.v1.charges.retrieve(intent.latest_charge, params={"expand": ["refunds"]})
    assert charge.refunds.object == "list"
    price = client.v1.prices.create(
        params={"currency": "usd", "unit_amount": 500, "product_data": {"name": "Book"}}
    )
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "success_url": "http://127.0.0.1/ok",
            "line_items": [{"price": price.id, "quantity": 1}],
        }
    )
    expanded = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["line_items.data.discounts", "total_details.breakdown"]}
    )
    assert expanded.line_items.data[0].discounts == []
    assert expanded.total_details.breakdown.discounts == []
    with pytest.raises(stripe.InvalidRequestError, match="cannot be expanded"):
        client.v1.charges.retrieve(charge.id, params={"expand": ["outcome"]})


# -- search ---------------------------------------------------------------------------------


def test_search_customers(client):
    for i in range(5):
        client.v1.customers.create(
            params={"email": f"s{i}@example.com", "metadata": {"order_id": str(i % 2)}}
        )
    found = client.v1.customers.search(params={"query": "email:'s3@example.com'"})
    assert found.object == "search_result"
    assert [c.email for c in found.data] == ["s3@example.com"]
    by_meta = client.v1.customers.search(params={"query": "metadata['order_id']:'1'"})
    assert {c.email for c in by_meta.data} == {"s1@example.com", "s3@example.com"}
    either = client.v1.customers.search(
        params={"query": "email:'s0@example.com' OR email:'s4@example.com'"}
    )
    assert len(either.data) == 2
    both = client.v1.customers.search(
        params={"query": "metadata['order_id']:'0' AND email:'s2@example.com'"}
    )
    assert [c.email for c in both.data] == ["s2@example.com"]
    paged = client.v1.customers.search(params={"query": "email~'example'", "limit": 2})
    assert paged.has_more is True and paged.next_page
    assert len(list(paged.auto_paging_iter())) == 5


@pytest.mark.parametrize(
    "query",
    ["email:", "email:'a' AND name:'b' OR name:'c'", "nosuchfield:'x'", "email 'x'"],
)
def test_malformed_search_is_400(client, query):
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.search(params={"query": query})


def test_search_other_resources(client):
    product = client.v1.products.create(params={"name": "Shirt", "metadata": {"sku": "S1"}})
    client.v1.prices.create(params={"product": product.id, "currency": "usd", "unit_amount": 100})
    assert (
        client.v1.products.search(params={"query": "metadata['sku']:'S1'"}).data[0].id == product.id
    )
    assert len(client.v1.prices.search(params={"query": f"product:'{product.id}'"}).data) == 1
    for name in ("payment_intents", "charges", "subscriptions", "invoices"):
        result = getattr(client.v1, name).search(params={"query": "status:'x'"})
        assert result.data == []


def test_checkout_sessions_have_no_search(fakestripe):
    status, _, _ = raw(
        fakestripe.url + "/v1/checkout/sessions/search?query=x",
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert status == 404


# -- products and prices ---------------------------------------------------------------------


def test_products_and_prices(client):
    product = client.v1.products.create(params={"name": "Mug", "description": "A mug"})
    assert product.active is True and product.updated == product.created
    one_time = client.v1.prices.create(
        params={"product": product.id, "currency": "jpy", "unit_amount": 1500}
    )
    assert one_time.type == "one_time" and one_time.recurring is None
    monthly = client.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 999,
            "recurring": {"interval": "month"},
        }
    )
    assert monthly.recurring.interval == "month" and monthly.type == "recurring"
    inline = client.v1.prices.create(
        params={"currency": "usd", "unit_amount": 5, "product_data": {"name": "Inline"}}
    )
    assert client.v1.products.retrieve(inline.product).name == "Inline"
    assert [p.id for p in client.v1.prices.list(params={"product": product.id})] == [
        monthly.id,
        one_time.id,
    ]
    assert [p.id for p in client.v1.prices.list(params={"type": "recurring"})] == [monthly.id]
    client.v1.prices.update(one_time.id, params={"active": False})
    assert [p.id for p in client.v1.prices.list(params={"active": False})] == [one_time.id]
    with pytest.raises(stripe.InvalidRequestError, match="user-created prices"):
        client.v1.products.delete(product.id)
    bare = client.v1.products.create(params={"name": "Bare"})
    assert client.v1.products.delete(bare.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.products.retrieve(bare.id)
    client.v1.products.update(product.id, params={"default_price": monthly.id})
    expanded = client.v1.products.retrieve(product.id, params={"expand": ["default_price"]})
    assert expanded.default_price.unit_amount == 999
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.prices.create(
            params={"product": "prod_nope", "currency": "usd", "unit_amount": 5}
        )
    assert info.value.param == "product"


# -- events and webhook endpoints -------------------------------------------------------------


def test_events_record_changes_newest_first(client):
    customer = client.v1.customers.create(params={"email": "a@example.com"})
    client.v1.customers.update(
        customer.id, params={"email": "b@example.com", "metadata": {"k": "v"}}
    )
    client.v1.customers.delete(customer.id)
    events = client.v1.events.list().data
    assert [e.type for e in events] == ["customer.deleted", "customer.updated", "customer.created"]
    assert [e.created for e in events] == sorted((e.created for e in events), reverse=True)
    assert sorted(e.id for e in events) == [e.id for e in reversed(events)]
    updated = events[1]
    assert updated.data.previous_attributes.to_dict() == {
        "email": "a@example.com",
        "metadata": {"k": None},
    }
    assert updated.data.object.email == "b@example.com"
    assert updated["request"]["id"].startswith("req_")
    assert updated.api_version == DEFAULT_API_VERSION
    assert client.v1.events.retrieve(updated.id).type == "customer.updated"
    only = client.v1.events.list(params={"type": "customer.created"}).data
    assert [e.type for e in only] == ["customer.created"]
    several = client.v1.events.list(params={"types": ["customer.created", "customer.deleted"]})
    assert len(several.data) == 2
    wildcard = client.v1.events.list(params={"type": "customer.*"})
    assert len(wildcard.data) == 3
    assert client.v1.events.list(params={"created": {"lt": events[-1].created}}).data == []


def test_webhook_endpoint_lifecycle(client):
    created = client.v1.webhook_endpoints.create(
        params={
            "url": "http://127.0.0.1:9/hook",
            "enabled_events": ["charge.succeeded"],
            "api_version": "2024-06-20",
            "description": "old",
        }
    )
    assert created.secret.startswith("whsec_")
    assert created.api_version == "2024-06-20" and created.status == "enabled"
    fetched = client.v1.webhook_endpoints.retrieve(created.id)
    assert "secret" not in fetched
    default = client.v1.webhook_endpoints.create(
        params={"url": "http://127.0.0.1:9/h", "enabled_events": ["*"]}
    )
    assert default.api_version == DEFAULT_API_VERSION
    updated = client.v1.webhook_endpoints.update(
        created.id,
        params={
            "enabled_events": ["charge.failed", "charge.succeeded"],
            "disabled": True,
            "url": "http://127.0.0.1:9/new",
            "metadata": {"a": "b"},
            "description": "new",
        },
    )
    assert updated.status == "disabled" and updated.url.endswith("/new")
    assert list(updated.enabled_events) == ["charge.failed", "charge.succeeded"]
    assert [e.id for e in client.v1.webhook_endpoints.list()] == [default.id, created.id]
    assert client.v1.webhook_endpoints.delete(created.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.webhook_endpoints.retrieve(created.id)


def test_event_created_is_monotonic(client):
    for _ in range(5):
        client.v1.customers.create()
    events = client.v1.events.list().data
    assert all(a.created >= b.created and a.id > b.id for a, b in itertools.pairwise(events))
    assert time.time() - events[0].created < 5


def test_search_numeric_comparisons_and_negation(client):
    for amount in (500, 1500, 2500):
        client.v1.payment_intents.create(params={"amount": amount, "currency": "usd"})
    found = client.v1.payment_intents.search(params={"query": "amount>1000 AND currency:'usd'"})
    assert sorted(p.amount for p in found.data) == [1500, 2500]
    assert [
        p.amount for p in client.v1.payment_intents.search(params={"query": "-amount>=1500"}).data
    ] == [500]


def test_webhook_endpoint_event_types_are_validated(client):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.webhook_endpoints.create(
            params={"url": "http://127.0.0.1:9/", "enabled_events": ["not an event"]}
        )
    assert info.value.param == "enabled_events[0]"


def test_indexed_filters_page_correctly_in_both_directions(client):
    # Given two customers whose intents interleave
    alice, bob = client.v1.customers.create(), client.v1.customers.create()
    mine = []
    for i in range(9):
        owner = alice if i % 3 else bob
        intent = client.v1.payment_intents.create(
            params={"amount": 100 + i, "currency": "eur", "customer": owner.id}
        )
        if owner is alice:
            mine.append(intent.id)
    mine.reverse()  # newest first
    # When listing alice's intents page by page, then back
    page = client.v1.payment_intents.list(params={"customer": alice.id, "limit": 4})
    rest = client.v1.payment_intents.list(
        params={"customer": alice.id, "limit": 4, "starting_after": page.data[-1].id}
    )
    back = client.v1.payment_intents.list(
        params={"customer": alice.id, "limit": 2, "ending_before": rest.data[0].id}
    )
    # Then only hers come back, newest first, with has_more right
    assert [p.id for p in page.data] == mine[:4] and page.has_more
    assert [p.id for p in rest.data] == mine[4:] and not rest.has_more
    assert [p.id for p in back.data] == mine[2:4] and back.has_more
    iterated = client.v1.payment_intents.list(params={"customer": alice.id, "limit": 2})
    assert [p.id for p in iterated.auto_paging_iter()] == mine
    # And a changed field moves the object between index entries
    client.v1.payment_intents.update(mine[0], params={"customer": bob.id})
    assert mine[0] not in [
        p.id for p in client.v1.payment_intents.list(params={"customer": alice.id})
    ]
    assert mine[0] in [p.id for p in client.v1.payment_intents.list(params={"customer": bob.id})]
    assert client.v1.payment_intents.list(params={"customer": "cus_nobody"}).data == []
