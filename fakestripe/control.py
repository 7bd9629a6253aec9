"""`/_fake/*` control endpoints for tests, benchmarks and the demo (no auth, no faults)."""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager, nullcontext
from typing import Any

from . import objects
from .api import route
from .catalog import price_create, product_create
from .customers import customer_create
from .errors import invalid, no_such
from .events import recipients
from .params import as_bool, as_int
from .payments import payment_intent_create
from .subscriptions import subscription_create, subscription_renew


@route("GET", "/_fake/health")
def health(emu, call) -> dict[str, Any]:
    return {"ok": True}


@route("POST", "/_fake/reset")
def reset(emu, call) -> dict[str, Any]:
    emu.reset()
    for cache in ("_open_sessions", "_pending_settlements", "_scheduled_jobs"):
        if hasattr(emu, cache):
            getattr(emu, cache).clear()
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
    """The Dashboard's Resend: one more delivery of a v1 event (to webhook endpoints and
    snapshot destinations) or a thin event (to thin destinations), to the one given as
    `endpoint` or every subscribed one."""
    event = emu.store.get(evt_id)
    if event is None or event.get("object") not in ("event", "v2.core.event"):
        raise no_such("event", evt_id)
    endpoint_id = call.params.get("endpoint")
    if endpoint_id:
        endpoint = emu.store.get(endpoint_id)
        kinds = ("webhook_endpoint", "v2.core.event_destination")
        if endpoint is None or endpoint.get("object") not in kinds:
            raise no_such("webhook endpoint", endpoint_id, param="endpoint", status=400)
        targets = [endpoint_id]
    else:
        targets = recipients(emu.store, event)
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


@contextmanager
def _quiet(emu):
    """Emit no events (and so no deliveries) while seeding: handlers run under the store lock,
    so no API request sees the swap."""
    emu.events.emit = lambda *args, **kwargs: None
    try:
        yield
    finally:
        del emu.events.emit


@route("POST", "/_fake/bulk/seed")
def bulk_seed(emu, call) -> dict[str, Any]:
    """A business's history, quickly (benchmarks): customers who paid, some subscribed.

    Through the same code paths as the API, so every object has Stripe's shape and links:
    each customer pays `payments` one-off payment intents (card, succeeded: a charge and its
    balance transaction each); every `subscription_every`-th subscribes to a monthly price
    (a paid first invoice), and all but every `skip_renewal_every`-th of those then renews
    `renewals` times. No events unless `events=true`.
    """

    params = call.params
    count = as_int(params, "customers", required=True)
    if not 1 <= count <= 100_000:
        raise invalid("customers must be between 1 and 100000", param="customers")
    payments = as_int(params, "payments", default=1)
    every = as_int(params, "subscription_every", default=3)
    renewals = as_int(params, "renewals", default=1)
    skip_every = as_int(params, "skip_renewal_every", default=12)
    if min(payments, renewals) < 0 or min(every, skip_every) < 1:
        raise invalid("payments and renewals must be >= 0; the *_every values >= 1")
    inner = dataclasses.replace(call, params={}, request_id=None, idempotency_key=None)
    before = _listed_counts(emu)
    with nullcontext() if as_bool(params, "events", False) else _quiet(emu):
        product = product_create(emu, inner, {"name": "Seeded plan"})
        one_time = price_create(
            emu, inner, {"product": product["id"], "currency": "usd", "unit_amount": 2500}
        )
        monthly = price_create(
            emu,
            inner,
            {"product": product["id"], "currency": "usd", "unit_amount": 900,
             "recurring": {"interval": "month"}},
        )  # fmt: skip
        subscribed_n = 0
        for n in range(count):
            cus = customer_create(
                emu, inner, {"email": f"seed{n}@example.com", "name": f"Seed {n}"}
            )
            for _ in range(payments):
                payment_intent_create(
                    emu,
                    inner,
                    {"amount": one_time["unit_amount"], "currency": "usd",
                     "customer": cus["id"], "payment_method": "pm_card_visa", "confirm": "true"},
                )  # fmt: skip
            if n % every:
                continue
            sub = subscription_create(
                emu,
                inner,
                {"customer": cus["id"], "items": [{"price": monthly["id"]}],
                 "default_payment_method": "pm_card_visa"},
            )  # fmt: skip
            subscribed_n += 1
            if subscribed_n % skip_every == 0:
                continue
            for _ in range(renewals):
                subscription_renew(emu, inner, sub["id"])
    after = _listed_counts(emu)
    created = {t: n - before.get(t, 0) for t, n in after.items() if n != before.get(t, 0)}
    return {"created": created, "prices": [one_time["id"], monthly["id"]]}


def _listed_counts(emu) -> dict[str, int]:
    return {t: len(index.pos) for t, index in emu.store.indexes.items() if index.pos}


@route("GET", "/_fake/objects/counts")
def objects_counts(emu, call) -> dict[str, int]:
    """How many objects of each type the lists hold (what a complete mirror would have)."""
    return dict(sorted(_listed_counts(emu).items()))


@route("POST", "/_fake/events/age")
def events_age(emu, call) -> dict[str, Any]:
    """Make every stored event `days` older (tests of Stripe's 30-day events window).

    All events move together, so creation order (and the list order) is kept; events
    emitted afterwards are newer than all of them.
    """
    days = as_int(call.params, "days", required=True)
    if days < 1:
        raise invalid("days must be at least 1", param="days")
    aged = 0
    for event_id in emu.store.index("event").newest_first():
        event = emu.store.objects[event_id]
        event["created"] -= days * 86400
        emu.store.save(event)
        aged += 1
    return {"aged": aged, "days": days}
