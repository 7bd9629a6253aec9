"""Which time zone a customer's pages show times in.

Their saved choice (account page) first, then the zone their browser reports (the ``tz``
cookie set by ``shop/tz.js``), then the site's ``TIME_ZONE``. The choice is cached in the
session, so pages cost no query for it.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

SESSION_KEY = "shop_time_zone"
COOKIE = "tz"


@lru_cache(maxsize=1)
def names() -> tuple[str, ...]:
    """Every IANA zone name this system knows, sorted (the account page's choices)."""
    return tuple(sorted(zoneinfo.available_timezones()))


def zone(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The zone called ``name``, or None for anything that is not a known zone name."""
    if not name or name not in names():
        return None
    return zoneinfo.ZoneInfo(name)
