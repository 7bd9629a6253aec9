"""Staff two-factor in a real browser (headless chromium, Playwright) against the live server:
first sign-in enrols an authenticator from the QR page and shows the backup codes; the next
sign-in asks for a code. Codes are computed as an authenticator app would, from the device's
key. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.admin.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def authenticator(device: TOTPDevice, ahead: int = 0) -> str:
    device.refresh_from_db()
    return (
        f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift + ahead):06d}"
    )


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"two-factor-{name}.png"), full_page=True)


def sign_in(page) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", "support")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


def test_enrol_on_first_sign_in_then_sign_in_with_a_code(browser, live_server, settings):
    settings.STAFF_TWO_FACTOR = True
    support = get_user_model().objects.create_user(
        "support", "support@example.com", PASSWORD, is_staff=True
    )
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    said: list[str] = []
    page.on("console", lambda message: said.append(message.text))
    try:
        # First sign-in: the password, then the enrolment page with a QR code and the key
        sign_in(page)
        page.wait_for_url(re.compile(r"/admin/two-factor/setup/"))
        assert page.locator("#two-factor-qr").is_visible()
        assert page.evaluate("document.querySelector('#two-factor-qr').naturalWidth") > 100
        device = TOTPDevice.objects.get(user=support, confirmed=False)
        typed = page.locator("#two-factor-secret").inner_text().replace(" ", "")
        assert base64.b32decode(typed + "=" * (-len(typed) % 8)) == device.bin_key
        shot(page, "01-setup")
        # A code from the app confirms it; the backup codes are shown once
        page.fill("#id_code", authenticator(device))
        page.click("#two-factor-submit")
        page.wait_for_url(re.compile(r"/admin/two-factor/backup-codes/"))
        codes = page.locator("#backup-codes li").all_inner_texts()
        assert len(codes) == 10
        shot(page, "02-backup-codes")
        page.click("#two-factor-continue")
        page.wait_for_url(re.compile(r"/admin/$"))
        assert "Support console" in page.content()
        # Log out; the next sign-in asks for a code before the console
        page.click("#logout-form button")
        page.wait_for_url(f"{live_server.url}/")  # LOGOUT_REDIRECT_URL: the shop
        sign_in(page)
        page.wait_for_url(re.compile(r"/admin/two-factor/\?next="))
        shot(page, "03-code")
        page.fill("#id_code", "000000" if authenticator(device, 1) != "000000" else "111111")
        page.click("#two-factor-submit")
        page.wait_for_selector("#two-factor-error")
        page.goto("/admin/orders/order/")
        page.wait_for_url(re.compile(r"/admin/two-factor/\?next=%2Fadmin%2Forders%2Forder%2F"))
        page.wait_for_timeout(1_100)  # django-otp waits a second after a wrong code
        page.fill("#id_code", authenticator(device, ahead=1))  # a later code than enrolment's
        page.click("#two-factor-submit")
        page.wait_for_url(re.compile(r"/admin/orders/order/$"))
        shot(page, "04-console")
    finally:
        context.close()
    assert [m for m in said if "Content Security Policy" in m or "Refused to" in m] == []
