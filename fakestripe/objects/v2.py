"""API v2 shapes: event destinations, v2 (thin) events, the thin notification, v2 lists.

v2 timestamps are RFC 3339 strings with milliseconds (`2024-10-22T16:20:09.931Z`), not Unix
seconds; lists carry `next_page_url`/`previous_page_url` instead of `has_more`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def iso(timestamp: float) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def v2_list(data: list, next_page_url: str | None, previous_page_url: str | None) -> dict:
    return {"data": data, "next_page_url": next_page_url, "previous_page_url": previous_page_url}


def event_destination(
    oid: str,
    now: float,
    *,
    name: str,
    description: str,
    type_: str,
    event_payload: str,
    enabled_events: list[str],
    events_from: list[str],
    snapshot_api_version: str | None,
    metadata: dict[str, str],
    url: str | None = None,
    amazon_eventbridge: dict[str, Any] | None = None,
    secret: str | None = None,
) -> dict[str, Any]:
    """Stored with its URL and signing secret private: `webhook_endpoint.url` and
    `.signing_secret` are include-dependent, rendered null unless asked for."""
    stamp = iso(now)
    return {
        "id": oid,
        "object": "v2.core.event_destination",
        "amazon_eventbridge": amazon_eventbridge,
        "azure_event_grid": None,
        "created": stamp,
        "description": description,
        "enabled_events": enabled_events,
        "event_payload": event_payload,
        "events_from": events_from,
        "livemode": False,
        "metadata": metadata,
        "name": name,
        "snapshot_api_version": snapshot_api_version,
        "status": "enabled",
        "status_details": None,
        "type": type_,
        "updated": stamp,
        "webhook_endpoint": {"signing_secret": None, "url": None} if url else None,
        "_url": url,
        "_secret": secret,
        "_created": now,
    }


def eventbridge(account_id: str, region: str, destination_id: str, account: str) -> dict:
    source = f"aws.partner/stripe.com/{account}/{destination_id}"
    return {
        "aws_account_id": account_id,
        "aws_event_source_arn": f"arn:aws:events:{region}::event-source/{source}",
        "aws_event_source_status": "pending",
    }


def v2_event(
    oid: str,
    now: float,
    *,
    type_: str,
    related_object: dict[str, str] | None,
    reason: dict[str, Any] | None,
    changes: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    snapshot_event: str | None = None,
) -> dict[str, Any]:
    """A v2 event as `/v2/core/events` returns it. `snapshot_event` (v1 thin events only)
    names the v1 event it stands for, as Stripe's v1 thin events do."""
    event = {
        "id": oid,
        "object": "v2.core.event",
        "changes": changes,
        "context": None,
        "created": iso(now),
        "data": data,
        "livemode": False,
        "reason": reason,
        "related_object": related_object,
        "type": type_,
        "_created": now,
    }
    if snapshot_event is not None:
        event["snapshot_event"] = snapshot_event
    return event


def thin_notification(event: dict[str, Any]) -> dict[str, Any]:
    """What an event destination receives for a thin event: the event without its `data`
    and `changes` (fetch the event for those), as stripe-python's EventNotification reads."""
    notification = {
        "id": event["id"],
        "object": "v2.core.event",
        "context": event["context"],
        "created": event["created"],
        "livemode": event["livemode"],
        "reason": event["reason"],
        "type": event["type"],
    }
    if event.get("related_object") is not None:
        notification["related_object"] = event["related_object"]
    return notification
