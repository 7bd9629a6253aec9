"""Which time zone a customer's pages show times in.

Their saved choice (account page) first, then the zone their browser reports (the ``tz``
cookie set by ``shop/tz.js``), then the site's ``TIME_ZONE``. The choice is cached in the
session, so pages cost no query for it.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache
from pathlib import Path

SESSION_KEY = "shop_time_zone"
COOKIE = "tz"


@lru_cache(maxsize=1)
def names() -> tuple[str, ...]:
    """Every IANA zone name this system knows, sorted: what a saved choice or the browser may
    name, old aliases included (``Asia/Calcutta``)."""
    return tuple(sorted(zoneinfo.available_timezones()))


@lru_cache(maxsize=1)
def canonical() -> tuple[str, ...]:
    """The zones a person picks from: the time zone database's own list of current zones
    (``zone.tab``, one or more per country), without deprecated aliases (``US/Eastern``,
    ``Asia/Calcutta``) or legacy names (``EST5EDT``); UTC first."""
    known = set(names())
    for folder in zoneinfo.TZPATH:
        table = Path(folder) / "zone.tab"
        if table.is_file():
            rows = (line.split("\t") for line in table.read_text().splitlines())
            listed = {
                row[2].strip() for row in rows if len(row) >= 3 and not row[0].startswith("#")
            }
            return ("UTC", *sorted(listed & known))
    # No zone.tab (a system without tzdata files): region/city names, the aliases' folders out.
    legacy = ("US/", "Etc/", "SystemV/", "Brazil/", "Canada/", "Chile/", "Mexico/")
    return ("UTC", *sorted(n for n in known if "/" in n and not n.startswith(legacy)))


def grouped_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """``canonical`` grouped by region for a select box (UTC on its own first)."""
    groups: dict[str, list[tuple[str, str]]] = {"": [("UTC", "UTC")]}
    for name in canonical()[1:]:
        region, _, city = name.partition("/")
        groups.setdefault(region, []).append((name, city.replace("_", " ").replace("/", " / ")))
    return list(groups.items())


def zone(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The zone called ``name``, or None for anything that is not a known zone name."""
    if not name or name not in names():
        return None
    return zoneinfo.ZoneInfo(name)
