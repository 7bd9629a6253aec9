"""The API v2 conventions the `/v2` handlers share: JSON fields, `include`, errors, paging.

v2 lists page with an opaque `page` token and answer `next_page_url`/`previous_page_url`
(relative URLs stripe-python follows as they are), newest first. Errors are
`{"error": {"type", "code", "message"}}` (the app rewrites any error on a `/v2` path to that
shape): a missing object is 404 `not_found`, a bad field 400 `invalid_fields`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from . import objects
from .errors import StripeError
from .params import as_int

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def bad_field(message: str, field: str | None = None) -> StripeError:
    return StripeError(400, "invalid_request_error", message, code="invalid_fields", param=field)


def not_found(noun: str, object_id: str) -> StripeError:
    return StripeError(
        404, "invalid_request_error", f"No such {noun}: '{object_id}'", code="not_found"
    )


def check_fields(params: dict[str, Any], allowed: set[str] | frozenset[str]) -> None:
    for name in params:
        if name not in allowed:
            raise bad_field(f"Received unknown parameter: {name}", name)


def string(params: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None:
        if required:
            raise bad_field(f"Missing required parameter: {name}.", name)
        return None
    if not isinstance(value, str) or (required and not value):
        raise bad_field(f"Invalid value for {name}: a non-empty string is expected.", name)
    return value


def strings(params: dict[str, Any], name: str) -> list[str] | None:
    """An array of strings: a JSON array, or `name[0]=a&name[1]=b` on a query string."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, dict):  # decoded `name[0]=` keys that did not form a list
        value = list(value.values())
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_field(f"Invalid value for {name}: an array of strings is expected.", name)
    return value


def includes(params: dict[str, Any], allowed: set[str] | frozenset[str]) -> set[str]:
    values = set(strings(params, "include") or [])
    for value in values - set(allowed):
        raise bad_field(f"Invalid include value: {value}.", "include")
    return values


def hash_of(params: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = params.get(name)
    if value is not None and not isinstance(value, dict):
        raise bad_field(f"Invalid value for {name}: an object is expected.", name)
    return value


def parse_time(value: Any, field: str) -> float:
    """An RFC 3339 timestamp (v2's format) as Unix seconds."""
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise bad_field(f"Invalid timestamp for {field}: {value}.", field) from exc


def created_filter(params: dict[str, Any]) -> Callable[[float], bool] | None:
    bounds = hash_of(params, "created")
    if not bounds:
        return None
    checks = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__, "lte": float.__le__}
    tests = []
    for op, value in bounds.items():
        if op not in checks:
            raise bad_field(f"Received unknown parameter: created[{op}]", f"created[{op}]")
        tests.append((checks[op], parse_time(value, f"created[{op}]")))
    return lambda created: all(check(float(created), bound) for check, bound in tests)


# -- paging ------------------------------------------------------------------------------


def _token(direction: str, object_id: str) -> str:
    raw = json.dumps({direction: object_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(token: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        ((direction, object_id),) = json.loads(raw).items()
    except (binascii.Error, ValueError, TypeError, AttributeError) as exc:
        raise bad_field("Invalid page token.", "page") from exc
    if direction not in ("after", "before") or not isinstance(object_id, str):
        raise bad_field("Invalid page token.", "page")
    return direction, object_id


def page(
    emu,
    params: dict[str, Any],
    object_type: str,
    path: str,
    *,
    accept: Callable[[dict[str, Any]], bool],
    render: Callable[[dict[str, Any]], dict[str, Any]],
    query: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One page of a v2 list, newest first; `query` (the filters) is kept in the page URLs."""
    limit = as_int(params, "limit", default=DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise bad_field(f"limit must be between 1 and {MAX_LIMIT}.", "limit")
    index = emu.store.index(object_type)
    store = emu.store.objects

    def matches(ids) -> list[str]:
        found = []
        for object_id in ids:
            if accept(store[object_id]):
                found.append(object_id)
                if len(found) > limit:
                    break
        return found

    token = params.get("page")
    direction, cursor = _cursor(str(token)) if token else ("after", None)
    if cursor is not None and cursor not in index.pos:
        raise bad_field("Invalid page token: its position no longer exists.", "page")
    if direction == "after":
        found = matches(index.newest_first(index.pos[cursor] if cursor else None))
        data = found[:limit]
        more_after = len(found) > limit
        more_before = bool(data) and cursor is not None
        more_before = more_before and bool(matches(index.oldest_first(index.pos[data[0]])))
    else:
        found = matches(index.oldest_first(index.pos[cursor]))
        data = list(reversed(found[:limit]))
        more_before = len(found) > limit
        more_after = bool(data) and bool(matches(index.newest_first(index.pos[data[-1]])))
    keep = [(k, v) for k, v in (query or {}).items() if v not in (None, [], "")]
    keep.append(("limit", limit))

    def url(direction: str, object_id: str) -> str:
        pairs = [*keep, ("page", _token(direction, object_id))]
        return f"{path}?{_encode(pairs)}"

    next_url = url("after", data[-1]) if more_after else None
    previous_url = url("before", data[0]) if more_before else None
    return objects.v2_list([render(store[i]) for i in data], next_url, previous_url)


def _encode(pairs: list[tuple[str, Any]]) -> str:
    """Query parameters as stripe-python sends them (arrays as `name[0]=`)."""
    flat: list[tuple[str, Any]] = []
    for key, value in pairs:
        if isinstance(value, list):
            flat.extend((f"{key}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, dict):
            flat.extend((f"{key}[{sub}]", item) for sub, item in value.items())
        else:
            flat.append((key, value))
    return urlencode(flat)
