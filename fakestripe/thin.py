"""Event destinations' subscriptions, and thin events for the v1 events the emulator emits.

A v1 event goes, as itself, to the webhook endpoints and the snapshot event destinations
subscribed to its type (rendered at the destination's `snapshot_api_version`). As a thin
event it goes to the thin destinations subscribed to `v1.<type>`: Stripe names the thin
events of API v1 resources with a `v1.` prefix (`v1.customer.created`, not
`customer.created`). One v2 event (`v2.core.event`) stands for the v1 event: its
`related_object` points at the v1 object, `snapshot_event` at the v1 event, and `changes`
holds the before and after of the fields a `*.updated` event changed.
"""

from __future__ import annotations

import copy
from typing import Any

DESTINATION = "v2.core.event_destination"
V2_EVENT = "v2.core.event"
PING = "v2.core.event_destination.ping"


def thin_name(v1_type: str) -> str:
    return f"v1.{v1_type}"


def wants(destination: dict[str, Any], delivered_type: str) -> bool:
    """Whether an enabled destination subscribes to `delivered_type` (as delivered: a thin
    destination's types are v1./v2. names, a snapshot one's are v1 event types)."""
    if destination.get("status") != "enabled":
        return False
    enabled = destination["enabled_events"]
    return "*" in enabled or delivered_type in enabled


def destinations(store) -> list[dict[str, Any]]:
    """Event destinations, oldest first (the order deliveries are queued in)."""
    ids = list(store.index(DESTINATION).newest_first())
    return [store.objects[oid] for oid in reversed(ids)]


def routes(store, v1_type: str) -> tuple[list[str], list[str]]:
    """(snapshot destinations, thin destinations) that receive a v1 event of `v1_type`.

    Amazon EventBridge destinations are left out: the emulator cannot deliver to AWS.
    """
    snapshot: list[str] = []
    thin: list[str] = []
    for destination in destinations(store):
        if destination["type"] != "webhook_endpoint":
            continue
        if destination["event_payload"] == "snapshot" and wants(destination, v1_type):
            snapshot.append(destination["id"])
        elif destination["event_payload"] == "thin" and wants(destination, thin_name(v1_type)):
            thin.append(destination["id"])
    return snapshot, thin


def thin_recipients(store, event: dict[str, Any]) -> list[str]:
    """Where a v2 event goes: a ping to its destination, others to the thin destinations
    subscribed to its type."""
    if event["type"] == PING:
        related = store.get(event["related_object"]["id"])
        return [related["id"]] if related is not None else []
    return [
        d["id"]
        for d in destinations(store)
        if d["type"] == "webhook_endpoint"
        and d["event_payload"] == "thin"
        and wants(d, event["type"])
    ]


def reason(call) -> dict[str, Any] | None:
    """A v2 event's `reason`: the API request behind it, if any."""
    if call is None or not call.request_id:
        return None
    return {
        "type": "request",
        "request": {"id": call.request_id, "idempotency_key": call.idempotency_key},
    }


def changes(previous: dict[str, Any] | None, obj: dict[str, Any]) -> dict[str, Any] | None:
    """Before and after of the fields an update changed (v1 `previous_attributes`)."""
    if previous is None:
        return None
    return {"before": copy.deepcopy(previous), "after": _after(previous, obj)}


def _after(previous: dict[str, Any], obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, old in previous.items():
        new = obj.get(key) if isinstance(obj, dict) else None
        if (
            isinstance(old, dict)
            and isinstance(new, dict)
            and new.get("object") != "list"
            and "id" not in old
        ):
            out[key] = _after(old, new)
        else:
            out[key] = copy.deepcopy(new)
    return out
