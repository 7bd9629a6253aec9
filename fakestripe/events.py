"""Event emission: one event per state change, with Stripe's shape and ordering rules.

`created` never goes backwards and ids sort by creation, so "newest first" is index order.
Delivery to webhook endpoints and event destinations (snapshot and thin, see thin.py) is
queued here and performed by `delivery.Deliveries`.
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from . import DEFAULT_API_VERSION, objects, thin

if TYPE_CHECKING:
    from .app import Emulator
    from .calls import Call


def public(obj: Any) -> Any:
    """A deep copy without emulator-private ("_"-prefixed) keys."""
    if isinstance(obj, dict):
        return {k: public(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [public(v) for v in obj]
    return obj


def diff(old: Any, new: Any) -> dict[str, Any]:
    """Stripe's previous_attributes: changed keys with their old values, nested for hashes."""
    changes: dict[str, Any] = {}
    for key in old.keys() | new.keys():
        if key.startswith("_"):
            continue
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if (
            isinstance(before, dict)
            and isinstance(after, dict)
            and before.get("object") != "list"
            and "id" not in before
        ):
            changes[key] = diff(before, after)
        else:
            changes[key] = copy.deepcopy(before)
    return changes


def subscribed(endpoint: dict[str, Any], event_type: str) -> bool:
    if endpoint.get("status") != "enabled":
        return False
    enabled = endpoint["enabled_events"]
    return "*" in enabled or event_type in enabled


def recipients(store, event: dict[str, Any]) -> list[str]:
    """The webhook endpoints and event destinations an event goes to (a resend's targets)."""
    if event["object"] == thin.V2_EVENT:
        return thin.thin_recipients(store, event)
    endpoints = [
        endpoint_id
        for endpoint_id in reversed(list(store.index("webhook_endpoint").newest_first()))
        if subscribed(store.objects[endpoint_id], event["type"])
    ]
    return endpoints + thin.routes(store, event["type"])[0]


class EventLog:
    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator
        self._last_created = 0

    def reset(self) -> None:
        self._last_created = 0

    def emit(
        self,
        type_: str,
        obj: dict[str, Any],
        *,
        call: Call | None = None,
        previous: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        store = self.emu.store
        with store.lock:
            self._last_created = max(self._last_created, int(time.time()))
            data: dict[str, Any] = {"object": public(obj)}
            if previous is not None:
                data["previous_attributes"] = previous
            endpoints = [
                endpoint_id
                for endpoint_id in store.index("webhook_endpoint").newest_first()
                if subscribed(store.objects[endpoint_id], type_)
            ]
            snapshot_destinations, thin_destinations = thin.routes(store, type_)
            request = {
                "id": call.request_id if call else None,
                "idempotency_key": call.idempotency_key if call else None,
            }
            event = objects.event(
                store.ids.new("evt"),
                self._last_created,
                type_=type_,
                api_version=DEFAULT_API_VERSION,
                data=data,
                request=request,
                pending_webhooks=len(endpoints) + len(snapshot_destinations),
            )
            store.put(event)
            for endpoint_id in [*reversed(endpoints), *snapshot_destinations]:
                self.emu.deliveries.enqueue(event["id"], endpoint_id)
            if thin_destinations:
                self._thin(event, obj, data, call, thin_destinations)
        return event

    def _thin(self, event, obj, data, call, destination_ids: list[str]) -> None:
        """The thin event standing for v1 `event`, queued for the thin destinations."""
        store = self.emu.store
        v2_event = objects.v2_event(
            store.ids.new("evt_test"),
            time.time(),
            type_=thin.thin_name(event["type"]),
            related_object={
                "id": obj["id"],
                "type": obj["object"],
                "url": self.emu.object_url(obj),
            },
            reason=thin.reason(call),
            changes=thin.changes(data.get("previous_attributes"), data["object"]),
            snapshot_event=event["id"],
        )
        v2_event["_related_id"] = obj["id"]
        store.put(v2_event)
        for destination_id in destination_ids:
            self.emu.deliveries.enqueue(v2_event["id"], destination_id)
