"""When two copies of a Stripe object say the same, and what changed between them.

Both compare objects with their expanded related objects reduced to ids: a copy fetched with
other expansions (a webhook's, a list page's) is the same object.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from billing import types

# Fields whose change is nobody's business on a diff (and must not be shown).
DIFF_IGNORED = frozenset({"client_secret"})


def collapsed(value: Any, *, only: Collection[str] | None = None, root: bool = True) -> Any:
    """``value`` with nested objects reduced to their ids: every typed object (``only=None``)
    or only those of the types in ``only``."""
    if isinstance(value, dict):
        kind = value.get("object")
        nested = not root and "id" in value and isinstance(kind, str) and kind != "list"
        if nested and (only is None or kind in only):
            return value["id"]
        return {k: collapsed(v, only=only, root=False) for k, v in value.items()}
    if isinstance(value, list):
        return [collapsed(v, only=only, root=False) for v in value]
    return value


def same(stored: dict[str, Any], fetched: dict[str, Any]) -> bool:
    """Whether the mirror's copy says what Stripe's says: keys dj-stripe adds are ignored, and
    only mirrored objects (which have rows of their own) count as references."""
    mirrored = {*types.models(), "balance_transaction", "account"}
    stored = collapsed(stored, only=mirrored)
    fetched = collapsed(fetched, only=mirrored)
    return all(stored.get(key) == value for key, value in fetched.items())


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _comparable(data: dict[str, Any] | None) -> dict[str, Any]:
    # dj-stripe stores "deleted": false on rows Stripe sends without the field.
    return {
        key: collapsed(value, root=False)
        for key, value in (data or {}).items()
        if key not in DIFF_IGNORED and not (key == "deleted" and not value)
    }


def data_changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[list[Any]]:
    """Field-by-field differences between two copies of an object: [[field, before, after]]."""
    old, new = _flatten(_comparable(before)), _flatten(_comparable(after))
    return [
        [field, old.get(field), new.get(field)]
        for field in sorted(set(old) | set(new))
        if old.get(field) != new.get(field)
    ]
