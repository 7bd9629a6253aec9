"""Settings for every deployment, in one file.

Every difference between deployments comes from an environment variable read through the
single ``env`` below (documented in ``.env.example``). Secrets have no default outside
DEBUG, so a production process without them refuses to start.
"""

import hashlib
import os
import sys
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.demo_broker import filesystem_options
from config.logging import logging_config
from config.schedule import beat_schedule

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env is a convenience for development; the real environment always wins. The test
# suite reads none (the demo's names its emulator and broker), unless DJANGO_ENV_FILE says so.
_IN_PYTEST = "pytest" in sys.modules
_ENV_FILE = env.str("DJANGO_ENV_FILE", default=os.devnull if _IN_PYTEST else str(BASE_DIR / ".env"))
environ.Env.read_env(_ENV_FILE, overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. It is required when DJANGO_DEBUG is off; "
            "set it to a long random string (python -c 'import secrets; "
            "print(secrets.token_urlsafe(50))')."
        )
    SECRET_KEY = "insecure-development-only-key"  # noqa: S105 - DEBUG only, never served

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # Django's admin with the support console's index order (config/admin.py).
    "config.admin.ShopAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "csp",
    "django_ratelimit",
    # Staff two-factor (orders.login.two_factor): authenticator apps and backup codes. Before
    # orders, whose admin takes their model admins out (orders/admin/accounts.py).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "config.apps.StripeMirrorConfig",  # dj-stripe
    "billing",
    "orders",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.requests.invalid_input_middleware",
    "billing.webhooks.views.webhook_middleware",  # deliveries skip the rest (see its docstring)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed two-factor (django-otp).
    "django_otp.middleware.OTPMiddleware",
    # Who a page is drawn for: links are drawn only to pages its reader may open.
    "billing.viewer.viewer_middleware",
    "config.requests.private_pages_middleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "orders.middleware.time_zone_middleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads and processes (runserver, workers, live-server tests) share one file.
    # WAL lets readers run beside the writer; IMMEDIATE transactions take the write lock at
    # BEGIN, so writers queue (up to the timeout) instead of failing on lock upgrades, and
    # every transaction is serialised, which is also what the ordering guard needs here.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A file, not memory, so worker processes and live servers in tests share it.
    _sqlite_file = Path(DATABASES["default"]["NAME"])
    DATABASES["default"]["TEST"] = {
        "NAME": str(_sqlite_file.with_name(f"test-{_sqlite_file.name}"))
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache: rate-limit counters, shared by every web process (Redis in production) ---
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# One backend: a username or an email address (any case) and the password.
AUTHENTICATION_BACKENDS = ["orders.auth.AccountBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
# Times are shown in each customer's zone (orders.timezones); this is the default for visitors
# whose browser has not said, and for the admin and logs.
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
# One date format on every page, the customer's and the console's (config/formats/en).
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# The shop's name on its pages and in page titles.
SHOP_NAME = env.str("SHOP_NAME", default="Corner Shop")

# Digital products' files (a product's Stripe metadata ``download=<file name>``): kept in a
# private folder outside the static files, served only through signed, expiring links to the
# order's owner (``orders.downloads``). A "downloads" storage, so production may swap the
# backend (an S3 bucket without public access) in STORAGES.
SHOP_DOWNLOADS_ROOT = env.path("SHOP_DOWNLOADS_ROOT", default=BASE_DIR / "private" / "downloads")
STORAGES["downloads"] = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": str(SHOP_DOWNLOADS_ROOT)},
}
# How long a download link works (seconds): those mailed on payment, and those on the order
# page (made afresh at each view).
SHOP_DOWNLOAD_LINK_MAX_AGE = env.int("SHOP_DOWNLOAD_LINK_MAX_AGE", default=7 * 24 * 3600)

ADMIN_URL = env.str("ADMIN_URL", default="admin/")
if not ADMIN_URL.endswith("/"):
    ADMIN_URL += "/"

EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="shop@localhost")
if not DEBUG:
    EMAIL_HOST = env.str("DJANGO_EMAIL_HOST", default="localhost")
    EMAIL_PORT = env.int("DJANGO_EMAIL_PORT", default=25)

# --- Security (production defaults; each can be turned off for a plain-HTTP deployment) ---
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancers probe over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# The proxy terminates TLS and appends the client's address to X-Forwarded-For.
BEHIND_TLS_PROXY = env.bool("DJANGO_BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp): only this site's own scripts, styles and images, and
# forms that post here or to Stripe Checkout (config.csp adds Checkout's origin, which is
# fakestripe's when STRIPE_API_BASE points there). Inline <script>/<style> need the request's
# nonce ({{ request.csp_nonce }}).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

# --- Rate limits (django-ratelimit, counters in the default cache) ---
# "count/period" (15m = fifteen minutes), keyed on the account a name resolves to (any
# spelling: orders.auth.account_key). Sign-in and two-factor codes count failures only, per
# address, per account and per trusted device (orders/login/limits.py: over a limit, trusted
# devices still get in; the right password elsewhere is mailed a one-time link, "link" mails
# per account at most). Sign-up and password reset count every request.
RATE_LIMITS = {
    "login": {"ip": "30/15m", "account": "10/15m", "device": "10/15m", "link": "3/h"},
    "two_factor": {"ip": "30/15m", "account": "10/15m", "device": "10/15m"},
    "signup": {"ip": "10/h", "account": "3/h", "account_field": "email"},
    "password_reset": {"ip": "10/h", "account": "3/h", "account_field": "email"},
}
# Seconds an emailed sign-in link works, and a browser stays trusted after signing in.
LOGIN_LINK_MAX_AGE = 15 * 60
TRUSTED_DEVICE_MAX_AGE = 180 * 24 * 3600
RATELIMIT_USE_CACHE = "default"
# Behind the TLS proxy the client is the last address it appended to X-Forwarded-For.
RATELIMIT_IP_META_KEY = "config.throttle.client_ip"
SILENCED_SYSTEM_CHECKS = [
    # django-ratelimit lists django-redis but not Django's own RedisCache, whose atomic INCR
    # it works with; billing.checks requires a shared cache in production instead.
    "django_ratelimit.W001",
    # Development and tests keep counters in process memory (one process, or its threads).
    *(["django_ratelimit.E003"] if DEBUG else []),
    # A deployment's own exceptions, e.g. the demo: one web process, whose memory is shared.
    *env.list("DJANGO_SILENCED_SYSTEM_CHECKS", default=[]),
]

# --- Staff two-factor (django-otp): an authenticator app's code after the password, before
# any admin page. On in production; off in DEBUG and in `make demo` (which sets it false).
STAFF_TWO_FACTOR = env.bool("STAFF_TWO_FACTOR", default=not DEBUG)
OTP_TOTP_ISSUER = f"{SHOP_NAME} support"

# --- Celery ---
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
# Redis: kombu's transport, publishing through one client per channel (config/broker.py).
CELERY_BROKER_TRANSPORT = (
    "config.broker:Transport" if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else None
)
# Without a broker, tasks run in process; services enqueue them on commit either way.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers log through LOGGING below (one format, stdout, secrets redacted), not Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A killed worker's unacknowledged task comes back after this many seconds (Redis). Events do
# not wait for it: the periodic requeue takes over a claim past its lease (see below).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    # Publishing from a web request must not hang on an unreachable or hung broker: the event
    # is stored, and the periodic requeue sends what could not be published. Two tries of at
    # most 0.5 s each (CELERY_TASK_PUBLISH_RETRY_POLICY). Workers read with the event loop,
    # which these do not limit.
    "socket_connect_timeout": 0.5,
    "socket_timeout": 0.5,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 0.5
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# Periodic tasks, run by `celery worker --beat` (make demo) or a separate `celery beat`.
CELERY_BEAT_SCHEDULE = beat_schedule(
    requeue_seconds=env.float("BILLING_REQUEUE_INTERVAL_SECONDS", default=30.0)
)

# --- The embedded broker (make demo): a real worker with no server to install ---
# CELERY_BROKER_URL=filesystem:// keeps the queue as files (config/demo_broker.py).
DEMO_DIR = Path(env.str("DEMO_DIR", default=str(BASE_DIR / ".demo")))
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        filesystem_options(Path(env.str("CELERY_BROKER_FOLDER", default=str(DEMO_DIR / "broker"))))
    )

# --- Stripe ---
STRIPE_SECRET_KEY = env.str(
    "STRIPE_SECRET_KEY", default="sk_test_demo00000000000000000000000" if DEBUG else ""
)
# Unset means Stripe itself; tests and the demo point it at fakestripe on loopback.
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="") or None
# Pinned explicitly so an upgrade of stripe-python never changes the shapes we receive.
STRIPE_API_VERSION = env.str("STRIPE_API_VERSION", default="2026-08-26.dahlia")
# How Stripe sends this deployment its events: "snapshot" (a v1 webhook endpoint, each event
# carrying the object at STRIPE_API_VERSION) or "thin" (an API v2 event destination, each
# notification naming the object, fetched at STRIPE_API_VERSION). `stripe_webhooks sync`
# creates the receiver of this style; replays read the matching events list.
STRIPE_EVENT_PAYLOAD = env.str("STRIPE_EVENT_PAYLOAD", default="snapshot")
STRIPE_LIVE_MODE = STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=3)
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=30.0)
# Calls made while a customer waits on a page (billing.stripe_api.customer_facing): a short
# timeout and one retry each, all of them within the budget, so pages answer during an outage.
STRIPE_CUSTOMER_TIMEOUT_SECONDS = env.float("STRIPE_CUSTOMER_TIMEOUT_SECONDS", default=3.0)
STRIPE_CUSTOMER_MAX_NETWORK_RETRIES = env.int("STRIPE_CUSTOMER_MAX_NETWORK_RETRIES", default=1)
STRIPE_CUSTOMER_BUDGET_SECONDS = env.float("STRIPE_CUSTOMER_BUDGET_SECONDS", default=7.0)
# Part of every idempotency key we derive (billing.stripe_api.idempotency_key), so two
# deployments sharing one Stripe account (test mode) never replay each other's creates. The
# default is a short hash of SECRET_KEY: distinct per installation and stable across restarts.
STRIPE_IDEMPOTENCY_NAMESPACE = env.str(
    "STRIPE_IDEMPOTENCY_NAMESPACE",
    default=hashlib.sha256(f"stripe-idempotency:{SECRET_KEY}".encode()).hexdigest()[:12],
)
# Public base URL that Stripe reaches the product at (webhook endpoints, checkout return URLs).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

# Event processing: attempts before an event is marked failed, and the backoff base.
BILLING_EVENT_MAX_ATTEMPTS = env.int("BILLING_EVENT_MAX_ATTEMPTS", default=8)
BILLING_EVENT_RETRY_BASE_SECONDS = env.float("BILLING_EVENT_RETRY_BASE_SECONDS", default=10.0)
# A worker's claim on an event lasts this long; past it, the periodic requeue (every
# BILLING_REQUEUE_INTERVAL_SECONDS) gives the event to another worker (the first one died).
# Longer than an attempt can take (STRIPE_TIMEOUT_SECONDS x retries is well under it).
BILLING_EVENT_LEASE_SECONDS = env.float("BILLING_EVENT_LEASE_SECONDS", default=120.0)
# A due event whose task was queued this long ago and has not run is queued again (a lost
# task); one whose publish failed (broker down) is queued at the next periodic run.
BILLING_EVENT_REQUEUE_AFTER_SECONDS = env.float("BILLING_EVENT_REQUEUE_AFTER_SECONDS", default=60.0)
# Webhook intake keeps each endpoint it read (secret, status) this long per process, so most
# deliveries cost no query for it; a refusal is always decided on a fresh read.
BILLING_ENDPOINT_CACHE_SECONDS = env.float("BILLING_ENDPOINT_CACHE_SECONDS", default=5.0)
# The delivery log and the counts of refused deliveries are kept this long (billing.prune).
BILLING_WEBHOOK_RETENTION_DAYS = env.int("BILLING_WEBHOOK_RETENTION_DAYS", default=30)
# The console's share of the account's Stripe rate limit: actions calling Stripe per person
# and minute (resync, fetch missed events, metadata loads and saves, endpoint list refresh),
# objects in one background resync job, and resync jobs queued or running at once.
CONSOLE_STRIPE_CALLS_PER_MINUTE = env.int("CONSOLE_STRIPE_CALLS_PER_MINUTE", default=30)
CONSOLE_RESYNC_JOB_MAX_OBJECTS = env.int("CONSOLE_RESYNC_JOB_MAX_OBJECTS", default=1000)
CONSOLE_RESYNC_JOBS_AT_ONCE = env.int("CONSOLE_RESYNC_JOBS_AT_ONCE", default=2)
# The API versions page lists webhook endpoints from Stripe at most this often.
CONSOLE_ENDPOINTS_CACHE_SECONDS = env.int("CONSOLE_ENDPOINTS_CACHE_SECONDS", default=300)
# The two-person rule for refunds: Support refunds up to this amount (in the currency's minor
# unit: "usd:5000,jpy:7000") at once; above it, or in a currency not listed, a Billing admin
# approves the request (``orders.services.refund_console``).
REFUND_APPROVAL_THRESHOLDS = {
    currency.strip().lower(): int(amount)
    for currency, _, amount in (
        pair.partition(":")
        for pair in env.list(
            "REFUND_APPROVAL_THRESHOLDS", default=["usd:5000", "eur:5000", "gbp:4000", "jpy:7000"]
        )
    )
    if currency.strip()
}

DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_USE_NATIVE_JSONFIELD = True
DJSTRIPE_SUBSCRIBER_MODEL = "auth.User"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
# dj-stripe's migrations with one squash of them, which an empty database applies in seconds
# (billing/djstripe_migrations explains; existing databases migrate as before).
MIGRATION_MODULES = {"djstripe": "billing.djstripe_migrations"}

# --- Logging: one format, to stdout, secrets redacted, a 403 in one line (config/logging.py) ---
LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO")
LOGGING = logging_config(level=LOG_LEVEL, stripe_level=env.str("STRIPE_LOG_LEVEL", default="WARN"))
