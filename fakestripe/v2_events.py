"""`/v2/core/events`: the thin (v2) events, retrieve and list.

The emulator keeps a v2 event for each ping and for each v1 event at least one enabled thin
destination subscribes to (thin.py); v1 snapshot events stay at `/v1/events`. Listed newest
first, filtered by `object_id` (the related object), `types` and `created`, 30 days back as
Stripe keeps them.
"""

from __future__ import annotations

import time
from typing import Any

from . import thin
from .api import Resource, register, route
from .events import public
from .v2api import bad_field, check_fields, created_filter, not_found, page, parse_time, strings

PATH = "/v2/core/events"
RETENTION = 30 * 86400

# `_related_id` (the related object's id) backs the object_id filter with an index.
register(
    Resource(
        object=thin.V2_EVENT, path=None, prefix="evt_test", noun="event", indexed=("_related_id",)
    )
)


@route("GET", PATH + "/{evt_id}")
def event_retrieve(emu, call, evt_id: str) -> dict[str, Any]:
    check_fields(call.params, set())
    event = emu.store.get(evt_id)
    if event is None or event.get("object") != thin.V2_EVENT:
        raise not_found("event", evt_id)
    return public(event)


@route("GET", PATH)
def event_list(emu, call) -> dict[str, Any]:
    params = call.params
    check_fields(params, {"object_id", "types", "created", "limit", "page"})
    object_id = params.get("object_id") or None
    types = strings(params, "types")
    if types is not None and len(types) > 20:
        raise bad_field("types takes up to 20 event types.", "types")
    in_range = created_filter(params)
    floor = time.time() - RETENTION

    def accept(event: dict[str, Any]) -> bool:
        if event["_created"] < floor:
            return False
        if object_id and event.get("_related_id") != object_id:
            return False
        if types and event["type"] not in types:
            return False
        # compared as Stripe shows it, to the millisecond
        return in_range is None or in_range(parse_time(event["created"], "created"))

    return page(
        emu,
        params,
        thin.V2_EVENT,
        PATH,
        accept=accept,
        render=public,
        query={"object_id": object_id, "types": types, "created": params.get("created")},
    )
