"""Helpers for the emulator's own tests."""

from __future__ import annotations


def types_since(client, marker: str | None) -> list[str]:
    """Event types after `marker` (an event id), oldest first."""
    params = {"limit": 100, **({"ending_before": marker} if marker else {})}
    return [e.type for e in reversed(client.v1.events.list(params=params).data)]


def last_event(client) -> str | None:
    data = client.v1.events.list(params={"limit": 1}).data
    return data[0].id if data else None
