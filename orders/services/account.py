"""The customer's own settings."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.sessions.backends.base import SessionBase

from orders import timezones
from orders.models import CustomerSettings


def customer_time_zone_set(
    *, user: AbstractBaseUser, time_zone: str, session: SessionBase | None = None
) -> CustomerSettings:
    """Save the zone the customer's pages show times in (and use it in this session at once)."""
    if timezones.zone(time_zone) is None:
        raise ValueError(f"unknown time zone {time_zone!r}")
    settings, _ = CustomerSettings.objects.update_or_create(
        user=user, defaults={"time_zone": time_zone}
    )
    if session is not None:
        session[timezones.SESSION_KEY] = time_zone
    return settings
