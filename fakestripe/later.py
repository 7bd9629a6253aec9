"""Work Stripe does "some time later": an asynchronous refund settling or failing, the bank's
decision on submitted dispute evidence.

The job lives on the object it concerns (`_later`: due time, action name, arguments), so a
journal-backed emulator still runs it after a restart. The emulator's ticker runs jobs when
they fall due; `POST /_fake/scheduled/run` runs them at once (all, or one object's).
Modules register their actions by name (`@action("refund.fail")`) and schedule by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .api import background, route
from .errors import invalid, no_such

# name -> (emu, obj, job) -> None; job is the `_later` record (its arguments included)
ACTIONS: dict[str, Callable[[Any, dict[str, Any], dict[str, Any]], None]] = {}
CACHE = "_scheduled_jobs"  # the emulator attribute holding {object id: due time}


def action(name: str) -> Callable:
    def register(function: Callable) -> Callable:
        ACTIONS[name] = function
        return function

    return register


def jobs(emu) -> dict[str, float]:
    """Pending jobs by object id, rebuilt from the store on first use (after a restart)."""
    table = getattr(emu, CACHE, None)
    if table is None:
        table = {
            oid: obj["_later"]["at"]
            for oid, obj in emu.store.objects.items()
            if isinstance(obj.get("_later"), dict)
        }
        setattr(emu, CACHE, table)
    return table


def schedule(emu, obj: dict[str, Any], name: str, after: float, **args: Any) -> None:
    """Run action `name` on `obj` in `after` seconds (one job per object: a new one replaces
    the last)."""
    if name not in ACTIONS:
        raise KeyError(name)
    at = time.time() + after
    obj["_later"] = {"at": at, "do": name, **args}
    emu.store.save(obj)
    jobs(emu)[obj["id"]] = at
    emu.wake()


def cancel(emu, obj: dict[str, Any]) -> None:
    if obj.pop("_later", None) is not None:
        emu.store.save(obj)
    jobs(emu).pop(obj["id"], None)


def pending(obj: dict[str, Any]) -> str | None:
    """The name of the action waiting on `obj`, if any."""
    job = obj.get("_later")
    return job["do"] if isinstance(job, dict) else None


def run(emu, obj: dict[str, Any]) -> str | None:
    """Run the job waiting on `obj` now; returns its action name (None: there was none)."""
    job = obj.pop("_later", None)
    jobs(emu).pop(obj["id"], None)
    if not isinstance(job, dict):
        return None
    emu.store.save(obj)
    ACTIONS[job["do"]](emu, obj, job)
    return job["do"]


@background
def run_due(emu) -> float | None:
    """Run every job whose time has come; returns seconds until the next one is due."""
    with emu.store.lock:
        table = jobs(emu)
        now = time.time()
        for oid in sorted((o for o, at in table.items() if at <= now), key=table.get):
            obj = emu.store.get(oid)
            if obj is None:
                table.pop(oid, None)
                continue
            run(emu, obj)
        return min(table.values()) - now if table else None


@route("GET", "/_fake/scheduled")
def scheduled_list(emu, call) -> dict[str, Any]:
    table = jobs(emu)
    data = [
        {"object": oid, "action": emu.store.get(oid)["_later"]["do"], "at": at}
        for oid, at in sorted(table.items(), key=lambda item: item[1])
        if emu.store.get(oid) is not None
    ]
    return {"object": "list", "data": data}


@route("POST", "/_fake/scheduled/run")
def scheduled_run(emu, call) -> dict[str, Any]:
    """Run pending jobs now instead of waiting: every one, or the one on object `id`."""
    object_id = call.params.get("id")
    if object_id:
        obj = emu.store.get(str(object_id))
        if obj is None:
            raise no_such("object", str(object_id), param="id", status=400)
        if pending(obj) is None:
            raise invalid(f"Nothing is scheduled for {object_id}.", param="id")
        targets = [obj["id"]]
    else:
        table = jobs(emu)
        targets = sorted(table, key=table.get)
    ran = []
    for oid in targets:
        obj = emu.store.get(oid)
        if obj is not None:
            name = run(emu, obj)
            if name:
                ran.append({"object": oid, "action": name})
    return {"ran": ran}
