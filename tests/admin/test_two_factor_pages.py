"""With STAFF_TWO_FACTOR on, no admin page opens to a staff session that has only given its
password: every one of them (the console crawl's pages and the operators' pages) leads to the
code step, and opens once the session is verified."""

from __future__ import annotations

import pytest
from django.conf import settings
from django_otp.plugins.otp_totp.models import TOTPDevice

from orders.login import two_factor
from tests.admin.conftest import PASSWORD
from tests.admin.test_console_crawl import crawl_pages
from tests.admin_pages import admin_urls

pytestmark = pytest.mark.django_db(transaction=True)
VERIFY = f"/{settings.ADMIN_URL}two-factor/"


def test_every_admin_page_sends_an_unverified_staff_session_to_the_code_step(
    world, staff, settings
):
    settings.STAFF_TWO_FACTOR = True
    root = staff.superuser
    TOTPDevice.objects.create(user=root, name="phone", confirmed=True)
    codes = two_factor.backup_codes_create(user=root)
    client = staff.client("superuser")  # signed in with the password, not verified
    urls = sorted({page.url for page in crawl_pages(world)} | set(admin_urls(root)))
    assert len(urls) > 80
    problems = []
    for url in urls:
        response = client.get(url, follow=True)
        final = response.redirect_chain[-1][0] if response.redirect_chain else url
        if not final.startswith(VERIFY) or response.status_code != 200:
            problems.append(f"{url}: ended at {final} ({response.status_code})")
    assert not problems, "\n".join(problems)
    # and once verified (here with a backup code), the console opens
    response = client.post(VERIFY, {"code": codes[0], "next": urls[0]})
    assert response.status_code == 302
    assert client.get(f"/{settings.ADMIN_URL}").status_code == 200
    assert client.get(f"/{settings.ADMIN_URL}orders/order/").status_code == 200


def test_the_password_alone_signs_staff_in_while_the_setting_is_off(staff, client, settings):
    settings.STAFF_TWO_FACTOR = False
    response = client.post(
        f"/{settings.ADMIN_URL}login/", {"username": "support", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.get(f"/{settings.ADMIN_URL}").status_code == 200
