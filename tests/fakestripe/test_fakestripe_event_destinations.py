"""API v2 event destinations (`/v2/core/event_destinations`) and thin events
(`/v2/core/events`), through stripe-python's v2 services and its notification parser."""

from __future__ import annotations

import json

import pytest
import stripe
from stripe.events import V2CoreEventDestinationPingEventNotification
from stripe.v2.core import EventDestination

from .conftest import API_KEY

THIN = ["v1.customer.created", "v1.customer.updated", "v1.charge.refunded"]


def create(client, url="http://127.0.0.1:9/hook", **params):
    body = {
        "name": "Orders",
        "type": "webhook_endpoint",
        "event_payload": "thin",
        "enabled_events": THIN,
        "webhook_endpoint": {"url": url},
        **params,
    }
    return client.v2.core.event_destinations.create(params=body)


def notifications(client, receiver, secret):
    """Every delivered body, verified and parsed as stripe-python's EventNotification."""
    return [
        client.parse_event_notification(r["body"], r["headers"]["Stripe-Signature"], secret)
        for r in receiver.requests
    ]


def test_create_retrieve_and_include_dependent_fields(client):
    created = create(
        client,
        description="Order mirror",
        metadata={"team": "shop"},
        include=["webhook_endpoint.signing_secret", "webhook_endpoint.url"],
    )
    assert isinstance(created, EventDestination)
    assert created.id.startswith("ed_test_") and created.object == "v2.core.event_destination"
    # every field of stripe-python's EventDestination, with Stripe's v2 values
    fields = {f for f in EventDestination.__annotations__ if not f.startswith("_")}
    fields -= {"OBJECT_NAME"}
    assert fields - set(created.to_dict()) == set()
    assert (created.status, created.status_details, created.livemode) == ("enabled", None, False)
    assert (created.event_payload, created.snapshot_api_version) == ("thin", None)
    assert created.events_from == ["@self"] and created.metadata.to_dict() == {"team": "shop"}
    assert created.created.endswith("Z") and "T" in created.created  # RFC 3339, not Unix
    secret = created.webhook_endpoint.signing_secret
    assert secret.startswith("whsec_") and created.webhook_endpoint.url.endswith("/hook")
    # include-dependent: null unless included; the secret on creation only
    plain = client.v2.core.event_destinations.retrieve(created.id)
    assert plain.webhook_endpoint.to_dict() == {"signing_secret": None, "url": None}
    with_url = client.v2.core.event_destinations.retrieve(
        created.id, params={"include": ["webhook_endpoint.url"]}
    )
    assert with_url.webhook_endpoint.url == "http://127.0.0.1:9/hook"
    assert with_url.webhook_endpoint.signing_secret is None
    assert create(client).webhook_endpoint.signing_secret is None  # not asked for


def test_list_pages_with_page_urls(client):
    ids = [create(client, name=f"d{n}").id for n in range(5)]
    first = client.v2.core.event_destinations.list(params={"limit": 2})
    assert [d.id for d in first.data] == ids[:2:-1][:2]
    assert first.previous_page_url is None
    assert first.next_page_url.startswith("/v2/core/event_destinations?")
    assert [d.id for d in first.auto_paging_iter()] == ids[::-1]
    second = client.deserialize(client.raw_request("get", first.next_page_url), api_mode="V2")
    assert [d.id for d in second.data] == [ids[2], ids[1]]
    back = client.deserialize(client.raw_request("get", second.previous_page_url), api_mode="V2")
    assert [d.id for d in back.data] == [d.id for d in first.data]
    assert back.previous_page_url is None
    last = client.deserialize(client.raw_request("get", second.next_page_url), api_mode="V2")
    assert [d.id for d in last.data] == [ids[0]] and last.next_page_url is None
    included = client.v2.core.event_destinations.list(
        params={"limit": 1, "include": ["webhook_endpoint.url"]}
    )
    assert "include" in included.next_page_url and included.data[0].webhook_endpoint.url


def test_update_enable_disable_delete(client):
    destination = create(client, metadata={"a": "1", "b": "2"})
    updated = client.v2.core.event_destinations.update(
        destination.id,
        params={
            "name": "Renamed",
            "description": "now",
            "enabled_events": ["v1.invoice.paid"],
            "metadata": {"a": None, "c": "3"},
            "webhook_endpoint": {"url": "http://127.0.0.1:9/other"},
            "include": ["webhook_endpoint.url"],
        },
    )
    assert (updated.name, updated.description) == ("Renamed", "now")
    assert updated.enabled_events == ["v1.invoice.paid"]
    assert updated.metadata.to_dict() == {"b": "2", "c": "3"}  # null removes a key (v2 metadata)
    assert updated.webhook_endpoint.url == "http://127.0.0.1:9/other"
    assert updated.updated >= destination.updated
    disabled = client.v2.core.event_destinations.disable(destination.id)
    assert disabled.status == "disabled" and disabled.status_details.disabled.reason == "user"
    enabled = client.v2.core.event_destinations.enable(destination.id)
    assert enabled.status == "enabled" and enabled.status_details is None
    deleted = client.v2.core.event_destinations.delete(destination.id)
    assert (deleted.id, deleted.object) == (destination.id, "v2.core.event_destination")
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v2.core.event_destinations.retrieve(destination.id)
    assert (info.value.http_status, info.value.code) == (404, "not_found")
    assert set(info.value.json_body["error"]) == {"type", "code", "message"}
    assert client.v2.core.event_destinations.list().data == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"name": None}, "name"),
        ({"type": "carrier_pigeon"}, "type"),
        ({"event_payload": "fat"}, "event_payload"),
        ({"enabled_events": ["customer.created"]}, "enabled_events"),  # thin wants v1. names
        ({"enabled_events": []}, "enabled_events"),
        ({"snapshot_api_version": "2025-03-31.basil"}, "snapshot_api_version"),
        ({"webhook_endpoint": {"url": "ftp://x"}}, "webhook_endpoint.url"),
        ({"colour": "blue"}, "colour"),
        ({"include": ["secrets"]}, "include"),
    ],
)
def test_create_is_validated(client, params, field):
    with pytest.raises(stripe.InvalidRequestError) as info:
        create(client, **params)
    error = info.value.json_body["error"]
    assert (info.value.http_status, error["type"], error["code"]) == (
        400,
        "invalid_request_error",
        "invalid_fields",
    )
    assert field in error["message"] or field.split(".")[0] in error["message"]


def test_snapshot_destination_rejects_thin_names(client):
    with pytest.raises(stripe.InvalidRequestError, match="not an event type"):
        create(client, event_payload="snapshot", enabled_events=["v1.customer.created"])


def test_ping_sends_a_thin_event(client, fakestripe, receiver):
    destination = create(
        client, url=receiver.url, include=["webhook_endpoint.signing_secret"], enabled_events=THIN
    )
    event = client.v2.core.event_destinations.ping(destination.id)
    assert event.type == "v2.core.event_destination.ping" and event.object == "v2.core.event"
    assert event.related_object.url == f"/v2/core/event_destinations/{destination.id}"
    assert fakestripe.wait_deliveries(5)
    [notification] = notifications(client, receiver, destination.webhook_endpoint.signing_secret)
    assert isinstance(notification, V2CoreEventDestinationPingEventNotification)
    assert notification.id == event.id and notification.livemode is False
    assert notification.reason.type == "request" and notification.reason.request.id
    assert notification.fetch_related_object().id == destination.id
    fetched = notification.fetch_event()
    assert fetched.id == event.id and fetched.related_object.id == destination.id
    # the body is exactly a thin notification: no data, no changes
    body = json.loads(receiver.requests[0]["body"])
    assert set(body) == {
        "id", "object", "type", "created", "livemode", "context", "reason", "related_object",
    }  # fmt: skip
    with pytest.raises(ValueError, match="thin event"):
        stripe.StripeClient(API_KEY).construct_event(
            receiver.requests[0]["body"],
            receiver.requests[0]["headers"]["Stripe-Signature"],
            destination.webhook_endpoint.signing_secret,
        )
    with pytest.raises(stripe.InvalidRequestError):
        client.v2.core.event_destinations.ping("ed_test_missing")
