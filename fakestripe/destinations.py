"""Event destinations (`/v2/core/event_destinations`): where Stripe sends events, as thin
notifications or as v1 snapshot events.

`webhook_endpoint` destinations are delivered to by the same machinery as webhook endpoints
(signing, retries, faults); `amazon_eventbridge` ones are kept and listed, nothing is sent.
As Stripe's include-dependent fields, `webhook_endpoint.url` is null unless asked for with
`include`, and `webhook_endpoint.signing_secret` is returned on creation only, and only
with `include: ["webhook_endpoint.signing_secret"]`.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from . import DEFAULT_API_VERSION, objects, thin
from .api import Resource, merge_metadata, register, route
from .errors import StripeError
from .events import public
from .v2api import (
    bad_field,
    check_fields,
    hash_of,
    includes,
    not_found,
    page,
    string,
    strings,
)

PATH = "/v2/core/event_destinations"
NOUN = "event destination"
TYPES = ("webhook_endpoint", "amazon_eventbridge")
PAYLOADS = ("thin", "snapshot")
CREATE_INCLUDES = frozenset({"webhook_endpoint.signing_secret", "webhook_endpoint.url"})
READ_INCLUDES = frozenset({"webhook_endpoint.url"})
SNAPSHOT_EVENT = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")
THIN_EVENT = re.compile(r"^v[12](\.[a-z_]+(\[[a-z_.]+\])?)+$")
VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")

# Listed and counted like other objects; v2 objects have no v1 routes (path None).
register(Resource(object=thin.DESTINATION, path=None, prefix="ed_test", noun=NOUN))


def render(destination: dict[str, Any], include: set[str], *, creating: bool = False) -> dict:
    out = public(destination)
    if out["webhook_endpoint"] is not None:
        out["webhook_endpoint"] = {
            "signing_secret": destination["_secret"]
            if creating and "webhook_endpoint.signing_secret" in include
            else None,
            "url": destination["_url"] if "webhook_endpoint.url" in include else None,
        }
    return out


def fetch(emu, destination_id: str) -> dict[str, Any]:
    destination = emu.store.get(destination_id)
    if destination is None or destination.get("object") != thin.DESTINATION:
        raise not_found(NOUN, destination_id)
    return destination


def _events(value: list[str] | None, payload: str) -> list[str]:
    if not value:
        raise bad_field("Missing required parameter: enabled_events.", "enabled_events")
    thin_payload = payload == "thin"
    for i, name in enumerate(value):
        thin_name = bool(THIN_EVENT.match(name))
        v1_name = bool(SNAPSHOT_EVENT.match(name)) and not name.startswith(("v1.", "v2."))
        if name != "*" and not (thin_name if thin_payload else v1_name):
            kind = "a thin event type (v1.… or v2.…)" if thin_payload else "an event type"
            raise bad_field(f"Invalid enabled_events[{i}]: {name} is not {kind}.", "enabled_events")
    return list(value)


def _url(config: dict[str, Any] | None) -> str:
    url = (config or {}).get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise bad_field("webhook_endpoint.url must be an http(s) URL.", "webhook_endpoint.url")
    return url


def _metadata(current: dict[str, str], value: Any) -> dict[str, str]:
    """v2 metadata: a hash; a key set to null is removed."""
    if value is None:
        return current
    if not isinstance(value, dict):
        raise bad_field("Invalid value for metadata: an object is expected.", "metadata")
    try:
        return merge_metadata(current, value)
    except StripeError as error:
        raise bad_field(error.message, "metadata") from error


@route("POST", PATH)
def destination_create(emu, call) -> dict[str, Any]:
    params = call.params
    check_fields(
        params,
        {
            "name", "description", "type", "event_payload", "enabled_events", "events_from",
            "snapshot_api_version", "metadata", "webhook_endpoint", "amazon_eventbridge",
            "include",
        },
    )  # fmt: skip
    include = includes(params, CREATE_INCLUDES)
    name = string(params, "name", required=True)
    type_ = string(params, "type", required=True)
    if type_ not in TYPES:
        raise bad_field(f"Invalid type: must be one of {', '.join(TYPES)}.", "type")
    payload = string(params, "event_payload", required=True)
    if payload not in PAYLOADS:
        raise bad_field("Invalid event_payload: must be one of thin, snapshot.", "event_payload")
    version = string(params, "snapshot_api_version")
    if payload == "thin" and version:
        raise bad_field(
            "snapshot_api_version applies to snapshot destinations only.", "snapshot_api_version"
        )
    if version and not VERSION.match(version):
        raise bad_field(f"Invalid API version: {version}.", "snapshot_api_version")
    destination_id = emu.new_id("ed_test")
    url, bridge = None, None
    if type_ == "webhook_endpoint":
        url = _url(hash_of(params, "webhook_endpoint"))
    else:
        config = hash_of(params, "amazon_eventbridge") or {}
        account_id = string(config, "aws_account_id", required=True)
        region = string(config, "aws_region", required=True)
        bridge = objects.eventbridge(account_id, region, destination_id, objects.ACCOUNT_ID)
    destination = objects.event_destination(
        destination_id,
        time.time(),
        name=name,
        description=string(params, "description") or "",
        type_=type_,
        event_payload=payload,
        enabled_events=_events(strings(params, "enabled_events"), payload),
        events_from=strings(params, "events_from") or ["@self"],
        snapshot_api_version=(version or DEFAULT_API_VERSION) if payload == "snapshot" else None,
        metadata=_metadata({}, params.get("metadata")),
        url=url,
        amazon_eventbridge=bridge,
        secret="whsec_" + secrets.token_urlsafe(24) if url else None,
    )
    emu.store.put(destination)
    return render(destination, include, creating=True)


@route("GET", PATH)
def destination_list(emu, call) -> dict[str, Any]:
    check_fields(call.params, {"include", "limit", "page"})
    include = includes(call.params, READ_INCLUDES)
    return page(
        emu,
        call.params,
        thin.DESTINATION,
        PATH,
        accept=lambda d: True,
        render=lambda d: render(d, include),
        query={"include": sorted(include)},
    )


@route("GET", PATH + "/{ed_id}")
def destination_retrieve(emu, call, ed_id: str) -> dict[str, Any]:
    check_fields(call.params, {"include"})
    return render(fetch(emu, ed_id), includes(call.params, READ_INCLUDES))


@route("POST", PATH + "/{ed_id}")
def destination_update(emu, call, ed_id: str) -> dict[str, Any]:
    params = call.params
    check_fields(
        params, {"name", "description", "enabled_events", "metadata", "webhook_endpoint", "include"}
    )
    include = includes(params, READ_INCLUDES)
    destination = fetch(emu, ed_id)
    changes: dict[str, Any] = {}
    if "name" in params:
        changes["name"] = string(params, "name", required=True)
    if "description" in params:
        changes["description"] = string(params, "description") or ""
    if "enabled_events" in params:
        events = _events(strings(params, "enabled_events"), destination["event_payload"])
        changes["enabled_events"] = events
    if "metadata" in params:
        changes["metadata"] = _metadata(destination["metadata"], params["metadata"])
    if params.get("webhook_endpoint") is not None:
        if destination["type"] != "webhook_endpoint":
            raise bad_field("Only a webhook_endpoint destination has a URL.", "webhook_endpoint")
        changes["_url"] = _url(hash_of(params, "webhook_endpoint"))
    destination.update(changes)
    _touch(emu, destination)
    return render(destination, include)


@route("DELETE", PATH + "/{ed_id}")
def destination_delete(emu, call, ed_id: str) -> dict[str, Any]:
    check_fields(call.params, set())
    fetch(emu, ed_id)
    emu.store.unlist(ed_id)
    return {"id": ed_id, "object": thin.DESTINATION}


def _touch(emu, destination: dict[str, Any]) -> None:
    destination["updated"] = objects.iso(time.time())
    emu.store.save(destination)


def _set_status(emu, call, ed_id: str, status: str) -> dict[str, Any]:
    check_fields(call.params, set())
    destination = fetch(emu, ed_id)
    destination["status"] = status
    destination["status_details"] = (
        {"disabled": {"reason": "user"}} if status == "disabled" else None
    )
    _touch(emu, destination)
    return render(destination, set())


@route("POST", PATH + "/{ed_id}/enable")
def destination_enable(emu, call, ed_id: str) -> dict[str, Any]:
    return _set_status(emu, call, ed_id, "enabled")


@route("POST", PATH + "/{ed_id}/disable")
def destination_disable(emu, call, ed_id: str) -> dict[str, Any]:
    """A disabled destination receives nothing (a resend through `/_fake` still goes)."""
    return _set_status(emu, call, ed_id, "disabled")


@route("POST", PATH + "/{ed_id}/ping")
def destination_ping(emu, call, ed_id: str) -> dict[str, Any]:
    """Send a `v2.core.event_destination.ping` thin event to the destination; answers the
    event. Whatever the destination's enabled_events; nothing is sent to a disabled one."""
    check_fields(call.params, set())
    destination = fetch(emu, ed_id)
    event = objects.v2_event(
        emu.new_id("evt_test"),
        time.time(),
        type_=thin.PING,
        related_object={"id": ed_id, "type": thin.DESTINATION, "url": f"{PATH}/{ed_id}"},
        reason=thin.reason(call),
    )
    event["_related_id"] = ed_id
    emu.store.put(event)
    if destination["type"] == "webhook_endpoint":
        emu.deliveries.enqueue(event["id"], ed_id)
    return public(event)
