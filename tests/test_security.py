"""Content-Security-Policy on every page, and HSTS and secure cookies in production."""

from __future__ import annotations

import re

import pytest

from tests.test_settings import PRODUCTION_ENV, run_django

pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


def test_pages_carry_a_strict_policy_their_markup_satisfies(client, stripe_emulator):
    response = client.get("/")
    csp = policy(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    html = response.content.decode()
    # styles and scripts come from our own static files; an inline block would need the
    # response's nonce, and an inline style attribute cannot be allowed at all
    nonces = re.findall(r"'nonce-([^']+)'", response["Content-Security-Policy"])
    for tag in re.findall(r"<(?:style|script)\b[^>]*>", html):
        assert "src=" in tag or any(f'nonce="{n}"' in tag for n in nonces), tag
    assert not re.search(r"<[^>]+\sstyle=", html)
    assert re.search(r'<link rel="stylesheet" href="/static/[^"]+\.css"', html)


def test_forms_may_lead_to_stripe_checkout_and_nowhere_else(client, settings, stripe_emulator):
    # the emulator stands in for Checkout: its origin, taken from STRIPE_API_BASE
    assert policy(client.get("/"))["form-action"] == ["'self'", stripe_emulator.url]
    settings.STRIPE_API_BASE = None
    assert policy(client.get("/"))["form-action"] == ["'self'", "https://checkout.stripe.com"]


PROBE = """
from django.test import Client
client = Client(HTTP_HOST="shop.example.com")
plain = client.get("/accounts/login/")
secure = client.get("/accounts/login/", secure=True)
print("REDIRECT", plain.status_code, plain.get("Location"))
print("HSTS", secure.get("Strict-Transport-Security"))
print("CSP", secure.get("Content-Security-Policy"))
cookie = secure.cookies["csrftoken"]
print("CSRF_COOKIE", bool(cookie["secure"]), bool(cookie["httponly"]), cookie["samesite"])
from django.conf import settings
print("SESSION_COOKIE_SECURE", settings.SESSION_COOKIE_SECURE)
"""


def test_production_answers_with_hsts_secure_cookies_and_the_policy(tmp_path):
    # Deployed as the README says: static files collected first (their manifest names them)
    env = {**PRODUCTION_ENV, "DJANGO_STATIC_ROOT": str(tmp_path / "static")}
    collected = run_django(["manage.py", "collectstatic", "--no-input", "-v", "0"], env)
    assert collected.returncode == 0, collected.stderr
    result = run_django(["manage.py", "shell", "-c", PROBE], env)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["REDIRECT"] == "301 https://shop.example.com/accounts/login/"
    assert lines["HSTS"] == "max-age=31536000; includeSubDomains; preload"
    assert "form-action 'self' https://checkout.stripe.com" in lines["CSP"]
    assert lines["CSRF_COOKIE"].startswith("True")
    assert lines["SESSION_COOKIE_SECURE"] == "True"
