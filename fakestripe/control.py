"""`/_fake/*` control endpoints for tests, benchmarks and the demo (no auth, no faults)."""

from __future__ import annotations

from typing import Any

from . import objects
from .api import route
from .errors import invalid, no_such
from .events import subscribed
from .params import as_int


@route("GET", "/_fake/health")
def health(emu, call) -> dict[str, Any]:
    return {"ok": True}


@route("POST", "/_fake/reset")
def reset(emu, call) -> dict[str, Any]:
    emu.reset()
    if hasattr(emu, "_open_sessions"):
        emu._open_sessions.clear()
    return {"reset": True}


@route("GET", "/_fake/faults")
def faults_show(emu, call) -> dict[str, Any]:
    return dict(emu.faults.settings)


@route("POST", "/_fake/faults")
def faults_set(emu, call) -> dict[str, Any]:
    return emu.faults.update(call.params)


@route("DELETE", "/_fake/faults")
def faults_clear(emu, call) -> dict[str, Any]:
    emu.faults.clear()
    return dict(emu.faults.settings)


@route("GET", "/_fake/stats")
def stats_show(emu, call) -> dict[str, Any]:
    return emu.stats.as_dict()


@route("POST", "/_fake/stats/reset")
def stats_reset(emu, call) -> dict[str, Any]:
    emu.stats.reset()
    return emu.stats.as_dict()


@route("GET", "/_fake/deliveries", locked=False)
def deliveries_list(emu, call) -> dict[str, Any]:
    data = emu.deliveries.list(call.params.get("event"), call.params.get("endpoint"))
    return {"object": "list", "data": data, "idle": emu.deliveries.idle()}


@route("GET", "/_fake/deliveries/wait", locked=False)
def deliveries_wait(emu, call) -> dict[str, Any]:
    """Block until no delivery is queued, held back or in flight (or the timeout passes)."""
    timeout = float(call.params.get("timeout") or 5)
    return {"idle": emu.deliveries.wait_idle(min(timeout, 120))}


@route("POST", "/_fake/events/{evt_id}/resend")
def event_resend(emu, call, evt_id: str) -> dict[str, Any]:
    """The Dashboard's Resend: one more delivery, to one endpoint or every subscribed one."""
    event = emu.store.get(evt_id)
    if event is None or event.get("object") != "event":
        raise no_such("event", evt_id)
    endpoint_id = call.params.get("endpoint")
    if endpoint_id:
        endpoint = emu.store.get(endpoint_id)
        if endpoint is None or endpoint.get("object") != "webhook_endpoint":
            raise no_such("webhook endpoint", endpoint_id, param="endpoint", status=400)
        targets = [endpoint_id]
    else:
        targets = [
            oid
            for oid in emu.store.index("webhook_endpoint").newest_first()
            if subscribed(emu.store.objects[oid], event["type"])
        ]
    for target in targets:
        emu.deliveries.enqueue(evt_id, target, resend=True)
    return {"event": evt_id, "endpoints": targets}


@route("POST", "/_fake/bulk/customers")
def bulk_customers(emu, call) -> dict[str, Any]:
    """Fill the store quickly (benchmarks): plain customers, no events, no webhooks."""
    count = as_int(call.params, "count", required=True)
    if not 1 <= count <= 1_000_000:
        raise invalid("count must be between 1 and 1000000", param="count")
    now = emu.now()
    step = max(count // 1000, 1)
    sample = []
    for n in range(count):
        customer = objects.customer(emu.new_id("cus"), now, email=f"bulk{n}@example.com")
        emu.store.put(customer)
        if n % step == 0:
            sample.append(customer["id"])
    return {"created": count, "sample": sample}
