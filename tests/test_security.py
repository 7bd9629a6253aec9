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


def test_pages_carry_a_policy_with_a_nonce_their_inline_style_uses(client, stripe_emulator):
    response = client.get("/")
    csp = policy(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", " ".join(csp["style-src"])).group(1)
    assert f'<style nonce="{nonce}">' in response.content.decode()
    # a new nonce for every response
    assert client.get("/").content.decode().count(nonce) == 0


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


def test_production_answers_with_hsts_secure_cookies_and_the_policy():
    result = run_django(["manage.py", "shell", "-c", PROBE], PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["REDIRECT"] == "301 https://shop.example.com/accounts/login/"
    assert lines["HSTS"] == "max-age=31536000; includeSubDomains; preload"
    assert "form-action 'self' https://checkout.stripe.com" in lines["CSP"]
    assert lines["CSRF_COOKIE"].startswith("True")
    assert lines["SESSION_COOKIE_SECURE"] == "True"
