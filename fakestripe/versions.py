"""Rendering objects at an older API version, for requests and webhook endpoints pinned to one.

Objects are stored in the current (dahlia) shape. Only the best-known breaking change is
modelled: before 2025-03-31.basil, invoices carried `charge`/`payment_intent`/`subscription`
and `paid`, and subscriptions carried `current_period_start/end`. Other versions render as is.
"""

from __future__ import annotations

import copy
from typing import Any

from .events import public

__all__ = ["deepcopy", "is_legacy", "public", "render", "render_event"]
deepcopy = copy.deepcopy

BASIL = "2025-03-31"


def _is_before(version: str | None, cutoff: str) -> bool:
    return bool(version) and version[:10] < cutoff


def is_legacy(version: str | None) -> bool:
    return _is_before(version, BASIL)


def _legacy(obj: Any, store_get) -> Any:
    if isinstance(obj, list):
        return [_legacy(v, store_get) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {k: _legacy(v, store_get) for k, v in obj.items()}
    kind = out.get("object")
    if kind == "subscription" and out.get("items", {}).get("data"):
        first = out["items"]["data"][0]
        out["current_period_start"] = first.get("current_period_start")
        out["current_period_end"] = first.get("current_period_end")
    elif kind == "invoice":
        details = (out.get("parent") or {}).get("subscription_details") or {}
        out["subscription"] = details.get("subscription")
        out["subscription_details"] = {"metadata": details.get("metadata")}
        # The collecting intent is private on the stored invoice (snapshots lack it).
        raw = store_get(out["id"]) if store_get else None
        payment = (raw or obj).get("_payment_intent")
        out["payment_intent"] = payment
        charge = None
        if payment and store_get:
            pi = store_get(payment)
            charge = pi.get("latest_charge") if pi else None
        out["charge"] = charge
        out["paid"] = out.get("status") == "paid"
    return out


def render(obj: dict[str, Any], version: str | None, store_get=None) -> dict[str, Any]:
    """A public copy of `obj` in the shape of API `version`."""
    if _is_before(version, BASIL):
        return public(_legacy(obj, store_get))
    return public(obj)


def render_event(event: dict[str, Any], version: str, store_get=None) -> dict[str, Any]:
    rendered = public(event)
    if _is_before(version, BASIL):
        rendered["data"]["object"] = _legacy(event["data"]["object"], store_get)
    rendered["api_version"] = version
    return rendered
