"""Decoding of Stripe's form-encoded nested parameters.

stripe-python sends `metadata[k]=v`, `expand[0]=a`, `line_items[0][price]=p`; curl users
send `expand[]=a`. Values stay strings: each resource coerces what it reads, as Stripe does.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from .errors import invalid, missing_param


def _split_key(key: str) -> list[str]:
    """`a[b][c]` -> ["a", "b", "c"]; a segment runs to the next "]" (so `m[a[b]` -> "a[b")."""
    head, bracket, rest = key.partition("[")
    if not bracket:
        return [key]
    segments, position = [head], 0
    while position < len(rest):
        end = rest.find("]", position)
        if end < 0:
            segments.append(rest[position:])
            break
        segments.append(rest[position:end])
        position = end + 1
        if position < len(rest) and rest[position] == "[":
            position += 1
        elif position < len(rest):
            segments[-1] += "]" + rest[position:]
            break
    return segments


def _listify(value: Any) -> Any:
    """Turn dicts whose keys are all indices into lists (Stripe's array encoding)."""
    if not isinstance(value, dict):
        return value
    converted = {k: _listify(v) for k, v in value.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def decode_form(text: str) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        path = _split_key(key)
        node = root
        for i, segment in enumerate(path):
            last = i == len(path) - 1
            if segment == "":
                # `a[]` appends: number it after what is already there.
                segment = str(len(node))
            if last:
                node[segment] = value
            else:
                child = node.setdefault(segment, {})
                if not isinstance(child, dict):
                    raise invalid(f"Invalid array or hash for parameter: {key}", param=key)
                node = child
    return _listify(root)


def decode_body(body: bytes, content_type: str) -> dict[str, Any]:
    if not body:
        return {}
    if content_type.startswith("application/json"):
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise invalid("Invalid JSON body.") from exc
        if not isinstance(data, dict):
            raise invalid("Invalid JSON body: expected an object.")
        return data
    return decode_form(body.decode("utf-8", errors="replace"))


def as_int(params: dict, name: str, *, required: bool = False, default: int | None = None):
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing_param(name)
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise invalid(f"Invalid integer: {value}", param=name) from exc


def as_bool(params: dict, name: str, default: bool | None = None) -> bool | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise invalid(f"Invalid boolean: {value}", param=name)


def as_list(params: dict, name: str) -> list:
    value = params.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


# -- list filters and search fields ------------------------------------------------------


def field_is(name: str):
    """A list filter comparing a top-level field with the parameter as given."""

    def test(obj: dict[str, Any], value: Any) -> bool:
        actual = obj.get(name)
        if isinstance(actual, bool):
            return actual == as_bool({"v": value}, "v")
        return actual == value

    return test


def getter(path: str):
    def get(obj: dict[str, Any]) -> Any:
        for part in path.split("."):
            obj = obj.get(part) if isinstance(obj, dict) else None
        return obj

    return get
