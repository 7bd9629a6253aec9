import os
import subprocess
import sys

from tests.conftest import ROOT

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "a-production-secret-key-that-is-long-and-random-0123456789abcdefgh",
    "DJANGO_ALLOWED_HOSTS": "shop.example.com",
    "STRIPE_SECRET_KEY": "sk_test_production_like",
    "SITE_URL": "https://shop.example.com",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "CACHE_URL": "redis://127.0.0.1:6379/1",
    "DATABASE_URL": "sqlite:////tmp/deploy-check.sqlite3",
}


def run_django(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "STRIPE_", "CELERY_", "SITE_URL", "CACHE_URL"))
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        # Not the developer's .env either (make demo writes one naming its emulator).
        env={**clean, "DJANGO_ENV_FILE": os.devnull, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_refuses_to_start_without_secret_key_when_debug_is_off():
    env = {**PRODUCTION_ENV}
    del env["DJANGO_SECRET_KEY"]

    result = run_django(["manage.py", "check"], env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_starts_without_secret_key_in_debug():
    result = run_django(["manage.py", "check"], {"DJANGO_DEBUG": "true"})

    assert result.returncode == 0, result.stderr


def test_check_deploy_is_clean_with_production_variables():
    result = run_django(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_reports_missing_stripe_key():
    env = {**PRODUCTION_ENV}
    del env["STRIPE_SECRET_KEY"]

    result = run_django(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)

    assert result.returncode != 0
    assert "STRIPE_SECRET_KEY" in result.stdout + result.stderr
