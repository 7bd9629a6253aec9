"""Webhook endpoints, events and the account."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from . import DEFAULT_API_VERSION, objects
from .api import (
    Resource,
    boolean,
    check_params,
    expand_paths,
    merge_metadata,
    register,
    render,
    require,
    route,
    text,
)
from .errors import invalid, no_such
from .params import as_list

WEBHOOK_EVENTS_PARAM = "enabled_events"


EVENT_TYPE = re.compile(r"^(\*|[a-z_]+(\.[a-z_]+)+)$")


def _enabled_events(value: Any) -> list[str]:
    events = [str(e) for e in as_list({"v": value}, "v")]
    for i, name in enumerate(events):
        if not EVENT_TYPE.match(name):
            raise invalid(
                f"Invalid enabled_events[{i}]: {name} is not an event type.",
                param=f"enabled_events[{i}]",
            )
    if not events:
        raise invalid(
            "Missing required param: enabled_events.",
            param=WEBHOOK_EVENTS_PARAM,
            code="parameter_missing",
        )
    return events


def webhook_create(emu, call, params: dict[str, Any]) -> dict[str, Any]:
    url = str(require(params, "url"))
    if not url.startswith(("http://", "https://")):
        raise invalid(
            "Invalid URL: URL must be publicly accessible.", param="url", code="url_invalid"
        )
    endpoint = objects.webhook_endpoint(
        emu.new_id("we"),
        emu.now(),
        url=url,
        enabled_events=_enabled_events(require(params, "enabled_events")),
        api_version=text(params.get("api_version")) or DEFAULT_API_VERSION,
        description=text(params.get("description")),
        metadata=merge_metadata({}, params.get("metadata", {})),
        secret="whsec_" + secrets.token_urlsafe(24),
    )
    emu.store.put(endpoint)
    return endpoint


def webhook_update(emu, call, endpoint: dict[str, Any], params: dict[str, Any]) -> None:
    if "enabled_events" in params:
        endpoint["enabled_events"] = _enabled_events(params["enabled_events"])
    if "disabled" in params:
        endpoint["status"] = "disabled" if boolean(params["disabled"]) else "enabled"


def webhook_render_secret(emu, call, resource: Resource) -> dict[str, Any]:
    """Create, answering with the signing secret: Stripe shows it on creation only."""
    check_params(call.params, resource.create_params)
    endpoint = webhook_create(emu, call, call.params)
    return {**render(emu, call, endpoint), "secret": endpoint["_secret"]}


WEBHOOK_ENDPOINT = register(
    Resource(
        object="webhook_endpoint",
        path="webhook_endpoints",
        prefix="we",
        noun="webhook endpoint",
        create=None,
        create_params=frozenset(
            {"url", "enabled_events", "api_version", "description", "metadata", "connect"}
        ),
        update_params={"url": str, "description": text},
        update_hook=webhook_update,
        hook_params=frozenset({"enabled_events", "disabled"}),
        deletable="remove",
        has_created_filter=False,
    )
)
route("POST", "/v1/webhook_endpoints")(
    lambda emu, call: webhook_render_secret(emu, call, WEBHOOK_ENDPOINT)
)


def _event_type(obj: dict[str, Any], value: Any) -> bool:
    pattern = str(value)
    if pattern.endswith("*"):
        return obj["type"].startswith(pattern[:-1])
    return obj["type"] == pattern


# Stripe lists events of the last 30 days only ("List events, going back up to 30 days"),
# whatever the `created` filter asks for.
EVENT_LIST_WINDOW = 30 * 86400


def _event_in_window(obj: dict[str, Any], params: dict[str, Any]) -> bool:
    return obj["created"] >= time.time() - EVENT_LIST_WINDOW


EVENT = register(
    Resource(
        object="event",
        path="events",
        prefix="evt",
        noun="event",
        indexed=("type",),
        updatable=False,
        default_filter=_event_in_window,
        filters={
            "type": _event_type,
            "types": lambda o, v: any(_event_type(o, t) for t in as_list({"v": v}, "v")),
            "delivery_success": lambda o, v: (o["pending_webhooks"] == 0) == boolean(v),
        },
    )
)


@route("GET", "/v1/account")
def account_retrieve(emu, call) -> dict[str, Any]:

    return render(emu, call, objects.account())


@route("GET", "/v1/accounts")
def accounts_list(emu, call) -> dict[str, Any]:
    """Connected accounts (Connect): none. The platform's own account is not listed, as in
    Stripe; dj-stripe's djstripe_sync_models lists them before every model it syncs."""
    check_params(call.params, {"limit", "starting_after", "ending_before", "created"})
    return objects.list_object([], "/v1/accounts")


@route("GET", "/v1/accounts/{acct_id}")
def account_retrieve_by_id(emu, call, acct_id: str) -> dict[str, Any]:
    if acct_id != objects.ACCOUNT_ID:
        raise no_such("account", acct_id)
    return render(emu, call, objects.account(), expand_paths(call.params))
