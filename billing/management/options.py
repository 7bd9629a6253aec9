"""Option parsing shared by the operators' commands."""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime


def parse_when(value: str, option: str = "--since") -> datetime:
    """A date (2024-01-31, midnight UTC) or a time (2024-01-31T12:00Z)."""
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"{option}: {value!r} is not a date (2024-01-31) or a time.")
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return moment if moment.tzinfo else timezone.make_aware(moment)


def split_types(values: list[str] | None) -> list[str] | None:
    """``--types a b`` or ``--types a,b``."""
    if not values:
        return None
    return [t for value in values for t in value.split(",") if t]
