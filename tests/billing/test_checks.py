"""System checks (`manage.py check`): each problem is reported with its id and what to do."""

from __future__ import annotations

import pytest
from django.core import checks
from djstripe.models import WebhookEndpoint

from billing import stripe_api
from billing.webhooks.endpoints import webhook_endpoint_create
from tests.test_settings import PRODUCTION_ENV, run_django

pytestmark = pytest.mark.django_db


def messages(deploy: bool = False) -> dict[str, checks.CheckMessage]:
    found = checks.run_checks(include_deployment_checks=deploy)
    return {m.id: m for m in found if m.id and m.id.startswith("billing.")}


def test_a_clean_configuration_reports_nothing(stripe_emulator, settings):
    settings.DEBUG = True  # as a developer runs it (the emulator's STRIPE_API_BASE is fine then)
    webhook_endpoint_create(base_url="https://shop.example.com")
    assert messages() == {}


def test_missing_key(settings):
    settings.STRIPE_SECRET_KEY = ""
    found = messages()
    assert "STRIPE_SECRET_KEY" in found["billing.E001"].msg
    assert "sk_live_" in found["billing.E001"].hint


def test_live_key_with_debug_on(settings):
    settings.STRIPE_SECRET_KEY = "sk_live_abc"
    settings.STRIPE_LIVE_MODE = True
    settings.DEBUG = True
    found = messages()
    assert found["billing.E003"].level == checks.ERROR
    assert "DJANGO_DEBUG=false" in found["billing.E003"].hint


@pytest.mark.parametrize(
    ("pinned", "expected"),
    [
        ("2025-03-31.basil", {"billing.W002", "billing.W003"}),  # another release line
        ("2026-01-28.dahlia", set()),  # same line as both libraries: additive changes only
        ("dahlia", {"billing.E004"}),
    ],
)
def test_pinned_version_against_the_libraries(settings, pinned, expected):
    settings.STRIPE_API_VERSION = pinned
    found = {k for k in messages() if k in {"billing.W002", "billing.W003", "billing.E004"}}
    assert found == expected
    if "billing.W002" in expected:
        assert "STRIPE_API_VERSION=2026-08-26.dahlia" in messages()["billing.W002"].hint


def test_endpoint_at_another_version(stripe_emulator):
    old = webhook_endpoint_create(
        base_url="https://shop.example.com", api_version="2025-02-24.acacia"
    )
    found = messages()
    assert old.id in found["billing.W004"].msg
    assert "stripe_webhooks upgrade --to 2026-08-26.dahlia" in found["billing.W004"].hint
    assert f"stripe_webhooks retire {old.id}" in found["billing.W004"].hint


def test_endpoint_missing_types_or_with_extra_ones(stripe_emulator):
    webhook_endpoint_create(
        base_url="https://shop.example.com",
        enabled_events=["customer.created", "balance.available"],
    )
    found = messages()
    assert "checkout.session.completed" in found["billing.E006"].msg
    assert "balance.available" in found["billing.W005"].msg
    assert "stripe_webhooks sync --base-url" in found["billing.E006"].hint


def test_endpoint_without_a_secret(stripe_emulator):
    endpoint = webhook_endpoint_create(base_url="https://shop.example.com")
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret="")
    found = messages()
    assert endpoint.id in found["billing.E005"].msg
    assert "stripe_webhooks sync" in found["billing.E005"].hint


def test_disabled_and_deleted_endpoints_are_not_checked(stripe_emulator):
    endpoint = webhook_endpoint_create(
        base_url="https://shop.example.com", api_version="2025-02-24.acacia"
    )
    stripe_api.update(
        object_type="webhook_endpoint", stripe_id=endpoint.id, params={"disabled": True}
    )
    from billing.webhooks.upgrade import webhook_endpoint_disable

    webhook_endpoint_disable(endpoint_id=endpoint.id)
    assert "billing.W004" not in messages()


def test_production_needs_https_a_broker_a_shared_cache_and_an_endpoint(settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.CELERY_BROKER_URL = ""
    found = messages(deploy=True)
    assert {"billing.E007", "billing.E008", "billing.E009", "billing.W006"} <= set(found)
    assert "CELERY_BROKER_URL" in found["billing.E008"].hint
    assert "CACHE_URL" in found["billing.E009"].hint


def test_a_production_start_without_a_broker_is_refused():
    env = {**PRODUCTION_ENV}
    del env["CELERY_BROKER_URL"]
    result = run_django(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode != 0
    assert "billing.E008" in result.stderr + result.stdout


def test_check_runs_before_migrate_and_without_a_database(tmp_path):
    """Endpoint checks read the database; with no tables (or no server) they stay quiet."""
    for url in (f"sqlite:///{tmp_path}/empty.sqlite3", "postgres://nobody@127.0.0.1:1/none"):
        result = run_django(["manage.py", "check"], {"DJANGO_DEBUG": "true", "DATABASE_URL": url})
        assert result.returncode == 0, result.stdout + result.stderr
        assert "System check identified no issues" in result.stdout
