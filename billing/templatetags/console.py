"""Template filters for the support console: masked, formatted JSON and values."""

from __future__ import annotations

import json
from typing import Any

from django import template

from billing import display
from config.admin import section_of

register = template.Library()


@register.filter
def pretty_json(value: Any) -> str:
    """Indented JSON with every secret masked (autoescaped by the template)."""
    return display.pretty_json(value)


@register.filter
def masked(value: Any, key: Any = None) -> str:
    """A value for display (the value of ``key``, when given): JSON for structures, secrets,
    card numbers and credentials' values hidden, "-" for nothing."""
    if value is None or value == "":
        return "-"
    shown = display.hidden(value, key)
    return shown if isinstance(shown, str) else json.dumps(shown, sort_keys=True, default=str)


@register.filter
def seconds_between(end, start) -> str:
    if not end or not start:
        return ""
    seconds = (end - start).total_seconds()
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


@register.filter
def result_count(changelist) -> str:
    """A list's count as its paginator knows it: "more than 10,000" past the cap."""
    paginator = changelist.paginator
    if getattr(paginator, "capped", False):
        return f"more than {paginator.cap:,}"
    return f"{changelist.result_count:,}"


@register.filter
def section_name(opts) -> str:
    """The name of the index section a model is listed under (breadcrumbs use it)."""
    return section_of(opts)[0]


@register.filter
def section_app(opts) -> str:
    """The app label of the index section a model is listed under (its breadcrumb's link)."""
    return section_of(opts)[1]
