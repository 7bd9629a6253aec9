"""Bench-only settings: the product's settings, plus dj-stripe's own webhook view mounted.

Used by bench/webhooks.py for the dj-stripe side of the comparison (ROOT_URLCONF) and for
building a throwaway schema straight from the models (``migrate --run-syncdb`` with
migrations off: dj-stripe's ~300 migrations take over a minute of CPU to apply). The product
itself never mounts ``djstripe.urls``.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.djstripe_urls"

MIGRATION_MODULES = {
    label: None
    for label in ("admin", "auth", "contenttypes", "sessions", "djstripe", "billing", "orders")
}

# The benches' child processes run with DEBUG off and serve no rate-limited page (sign-in,
# sign-up), so a per-process cache for django-ratelimit's counters is enough here.
SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "django_ratelimit.E003"]  # noqa: F405
