"""System checks for the Stripe configuration and production readiness (`manage.py check`).

Each message says what to do. Checks that read webhook endpoints from the database skip
quietly when its tables do not exist yet (before ``migrate``) or it cannot be reached: the
database is not what ``check`` is about. Production-only checks run with ``--deploy``.

ids: E001-E002 key, E003 live key with DEBUG, E004 version format, W002-W003 version against
the libraries, E005-E006 and W004-W006 webhook endpoints, E007-E009 production services, E010
the payload style, E011 dj-stripe's migrations.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module

from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connection

from billing.webhooks import endpoints, versions

SYNC = "manage.py stripe_webhooks sync --base-url {site}"
NOT_SHARED_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
    "django.core.cache.backends.filebased.FileBasedCache",
    "django.core.cache.backends.db.DatabaseCache",
)


@checks.register("stripe")
def check_stripe_configuration(app_configs=None, **kwargs):
    messages = []
    key = settings.STRIPE_SECRET_KEY
    if not key:
        messages.append(
            checks.Error(
                "STRIPE_SECRET_KEY is not set.",
                hint="Set it in the environment to the account's secret key (sk_live_... or sk_test_...).",
                id="billing.E001",
            )
        )
    elif not key.startswith(("sk_", "rk_")):
        messages.append(
            checks.Error(
                "STRIPE_SECRET_KEY is not a secret or restricted key.",
                hint="Publishable keys (pk_...) cannot call the API; use the secret key.",
                id="billing.E002",
            )
        )
    if settings.STRIPE_LIVE_MODE and settings.DEBUG:
        messages.append(
            checks.Error(
                "A live Stripe key is in use with DJANGO_DEBUG on.",
                hint="Use a test key (sk_test_...) for development, or set DJANGO_DEBUG=false: "
                "debug pages show settings and data to whoever triggers an error.",
                id="billing.E003",
            )
        )
    if settings.STRIPE_API_BASE and not settings.DEBUG:
        messages.append(
            checks.Warning(
                f"STRIPE_API_BASE points the product at {settings.STRIPE_API_BASE}, not Stripe.",
                hint="Unset STRIPE_API_BASE in production; it exists for the emulator.",
                id="billing.W001",
            )
        )
    if settings.STRIPE_EVENT_PAYLOAD not in ("snapshot", "thin"):
        messages.append(
            checks.Error(
                f"STRIPE_EVENT_PAYLOAD is {settings.STRIPE_EVENT_PAYLOAD!r}.",
                hint="Set it to snapshot (a webhook endpoint) or thin (an event destination).",
                id="billing.E010",
            )
        )
    messages += _check_pinned_version()
    return messages


def _check_pinned_version() -> list[checks.CheckMessage]:
    pinned = settings.STRIPE_API_VERSION
    try:
        versions.api_version_validate(pinned)
    except endpoints.EndpointError as exc:
        return [
            checks.Error(
                f"STRIPE_API_VERSION: {exc}",
                hint="Set it to a version from Stripe's changelog, e.g. "
                f"{versions.sdk_api_version()} (the one stripe-python was generated for).",
                id="billing.E004",
            )
        ]
    messages = []
    for library, version, check_id in (
        ("stripe-python", versions.sdk_api_version(), "billing.W002"),
        ("dj-stripe", versions.djstripe_api_version(), "billing.W003"),
    ):
        # Within one named release (acacia, basil, ...) Stripe's changes are additive.
        if not versions.api_versions_compatible(pinned, version):
            messages.append(
                checks.Warning(
                    f"The pinned Stripe API version {pinned} is not in the release line "
                    f"{library} is written for ({version}); objects may not have the shape "
                    f"it expects.",
                    hint=f"Pin a {versions.api_version_major(version)} version "
                    f"(STRIPE_API_VERSION={version}), or upgrade {library} to a release for "
                    f"{versions.api_version_major(pinned)}; then move the webhook endpoints: "
                    f"manage.py stripe_webhooks upgrade --to <version>.",
                    id=check_id,
                )
            )
    return messages


def _local_endpoints() -> list[endpoints.Endpoint] | None:
    """The mirror's live endpoints, or None before migrate or without a database."""
    from djstripe.models import WebhookEndpoint

    try:
        if WebhookEndpoint._meta.db_table not in connection.introspection.table_names():
            return None
        return [e for e in endpoints.endpoints_list(from_stripe=False) if e.in_stripe]
    except DatabaseError:
        return None


@checks.register("stripe")
def check_webhook_endpoints(app_configs=None, **kwargs):
    rows = _local_endpoints()
    if not rows:
        return []
    pinned = settings.STRIPE_API_VERSION
    sync = SYNC.format(site=settings.SITE_URL)
    messages = []
    for e in (e for e in rows if e.status == "enabled"):
        if not e.has_secret:
            messages.append(
                checks.Error(
                    f"Webhook endpoint {e.id} ({e.url}) has no signing secret here: every "
                    f"delivery to it is refused.",
                    hint=f"Stripe shows a secret only when an endpoint is created: run `{sync}` "
                    f"for a new endpoint with its secret stored, then "
                    f"`manage.py stripe_webhooks retire {e.id}`.",
                    id="billing.E005",
                )
            )
        if e.api_version != pinned:
            messages.append(
                checks.Warning(
                    f"Webhook endpoint {e.id} delivers events at API version {e.api_version}; "
                    f"the pinned version is {pinned}.",
                    hint=f"An endpoint's version cannot change: run `manage.py stripe_webhooks "
                    f"upgrade --to {pinned}`, then `manage.py stripe_webhooks retire {e.id}` "
                    f"once the new endpoint receives everything.",
                    id="billing.W004",
                )
            )
        if e.missing_types:
            messages.append(
                checks.Error(
                    f"Webhook endpoint {e.id} is not subscribed to event types that handlers "
                    f"need: {', '.join(e.missing_types)}.",
                    hint=f"Run `{sync}`: it subscribes the endpoint to exactly the handled types.",
                    id="billing.E006",
                )
            )
        if e.extra_types:
            messages.append(
                checks.Warning(
                    f"Webhook endpoint {e.id} is subscribed to event types no handler takes: "
                    f"{', '.join(e.extra_types)}.",
                    hint=f"Run `{sync}` to subscribe it to exactly the handled types (each extra "
                    f"event costs a delivery and a stored row).",
                    id="billing.W005",
                )
            )
    return messages


@checks.register("stripe", deploy=True)
def check_production(app_configs=None, **kwargs):
    messages = []
    if not settings.SITE_URL.startswith("https://"):
        messages.append(
            checks.Error(
                f"SITE_URL is {settings.SITE_URL!r}, not an https:// address.",
                hint="Set SITE_URL to the public https URL (e.g. https://shop.example.com): "
                "Checkout returns customers there and webhook endpoints are created under it.",
                id="billing.E007",
            )
        )
    if not settings.CELERY_BROKER_URL:
        messages.append(
            checks.Error(
                "CELERY_BROKER_URL is not set: events would be processed inside web requests, "
                "and a failure would not be retried in the background.",
                hint="Set CELERY_BROKER_URL (e.g. redis://redis:6379/0) and run Celery workers "
                "(celery -A config worker).",
                id="billing.E008",
            )
        )
    backend = settings.CACHES["default"]["BACKEND"]
    if backend in NOT_SHARED_CACHES:
        messages.append(
            checks.Error(
                f"The default cache ({backend.rsplit('.', 1)[-1]}) is not shared between "
                f"processes, so login, sign-up and password reset limits would be counted per "
                f"process.",
                hint="Set CACHE_URL to a Redis database (e.g. redis://redis:6379/1).",
                id="billing.E009",
            )
        )
    rows = _local_endpoints()
    if rows is not None and not any(e.status == "enabled" for e in rows):
        messages.append(
            checks.Warning(
                "No enabled webhook endpoint: Stripe sends this deployment no events.",
                hint=f"Run `{SYNC.format(site=settings.SITE_URL)}`.",
                id="billing.W006",
            )
        )
    return messages


def _migration_names(package: str) -> set[str]:
    return {m.name for m in pkgutil.iter_modules(import_module(package).__path__)}


@checks.register("stripe")
def check_djstripe_migrations(app_configs=None, **kwargs):
    """Every migration dj-stripe ships is one the ``djstripe`` app's migration module lists:
    ``billing.djstripe_migrations`` holds them (``MIGRATION_MODULES``), so an upgraded dj-stripe
    whose new migration it lacks would otherwise never be applied."""
    # pytest-django's --no-migrations stand-in has no get(): it maps every app to None
    modules = settings.MIGRATION_MODULES
    module = modules["djstripe"] if "djstripe" in modules else None  # noqa: SIM401
    if not module:
        return []
    missing = sorted(_migration_names("djstripe.migrations") - _migration_names(module))
    if not missing:
        return []
    return [
        checks.Error(
            f"dj-stripe ships migrations that {module} does not list: {', '.join(missing)}.",
            hint=f"Add each as a module of {module} that imports dj-stripe's own Migration "
            f"(as its 0002_2_10.py does).",
            id="billing.E011",
        )
    ]
