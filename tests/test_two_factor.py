"""Staff two-factor (orders/login/two_factor.py) through the real pages: the admin's login, the
code step, first-time enrolment with backup codes, the limits on codes, an administrator's
reset (audited), and the setting that turns it off."""

from __future__ import annotations

import re
import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.models import AuditEntry
from orders.login import devices, two_factor

pytestmark = pytest.mark.django_db
User = get_user_model()
PASSWORD = "a-long-staff-password-1"
ADMIN = f"/{settings.ADMIN_URL}"
LOGIN = f"{ADMIN}login/"
VERIFY = f"{ADMIN}two-factor/"
SETUP = f"{ADMIN}two-factor/setup/"


@pytest.fixture(autouse=True)
def _two_factor_on(settings):
    settings.STAFF_TWO_FACTOR = True


@pytest.fixture
def root():
    return User.objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def support():
    return User.objects.create_user("support", "support@example.com", PASSWORD, is_staff=True)


def enrolled(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def code(device: TOTPDevice, ahead: int = 0) -> str:
    """What the authenticator shows now (``ahead`` steps of 30 s later)."""
    device.refresh_from_db()
    return (
        f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift + ahead):06d}"
    )


def wrong(device: TOTPDevice) -> str:
    right = {code(device, ahead) for ahead in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in right)


def password_login(client: Client, username: str, ip: str = "203.0.113.5"):
    return client.post(
        LOGIN, {"username": username, "password": PASSWORD, "next": ADMIN}, REMOTE_ADDR=ip
    )


def verified(client: Client) -> bool:
    return client.get(ADMIN).status_code == 200


def test_password_login_then_a_code_before_any_admin_page(support):
    device = enrolled(support)
    client = Client()
    # when staff give the right password
    response = password_login(client, "support")
    # then they are signed in, but sent to the code step, as every admin page sends them
    assert response.status_code == 302 and response["Location"] == f"{VERIFY}?next=%2Fadmin%2F"
    assert "_auth_user_id" in client.session
    chain = client.get(f"{ADMIN}orders/order/", follow=True).redirect_chain
    assert chain[-1][0].startswith(VERIFY)
    page = client.get(VERIFY)
    assert page.status_code == 200 and b'autocomplete="one-time-code"' in page.content
    # when they give a wrong code, they are still not in
    response = client.post(VERIFY, {"code": wrong(device), "next": ADMIN})
    assert response.status_code == 200 and b"two-factor-error" in response.content
    assert not verified(client)
    # when they give the right one (past django-otp's one-second wait after a wrong one)
    time.sleep(1.1)
    response = client.post(VERIFY, {"code": code(device), "next": ADMIN})
    # then every admin page opens, and this browser is now trusted by the account
    assert response.status_code == 302 and response["Location"] == ADMIN
    assert verified(client)
    assert devices.COOKIE in response.cookies


def test_staff_without_an_authenticator_enrol_and_see_backup_codes_once(support):
    client = Client()
    response = password_login(client, "support")
    # the code step sends someone with no authenticator to set one up
    response = client.get(response["Location"])
    assert response.status_code == 302 and response["Location"].startswith(SETUP)
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert re.search(r'<img src="data:image/svg\+xml[^"]+" alt="QR code', html)
    device = TOTPDevice.objects.get(user=support)
    assert not device.confirmed
    assert two_factor.secret_text(device) in html
    assert not verified(client)
    # a wrong code does not confirm it
    response = client.post(SETUP, {"code": wrong(device), "next": ADMIN})
    assert response.status_code == 200 and b"two-factor-error" in response.content
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed
    # the app's code confirms it, verifies the session and shows ten backup codes, once
    time.sleep(1.1)
    response = client.post(SETUP, {"code": code(device), "next": ADMIN})
    assert response.status_code == 302 and "backup-codes" in response["Location"]
    shown = client.get(response["Location"]).content.decode()
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", shown)
    assert len(codes) == 10
    assert set(codes) == set(
        StaticDevice.objects.get(user=support).token_set.values_list("token", flat=True)
    )
    again = client.get(response["Location"]).content.decode()
    assert "backup-codes-shown" in again and codes[0] not in again
    assert verified(client)
    # and the setup page is not offered again
    assert client.get(SETUP)["Location"] == ADMIN


def test_a_backup_code_works_once(support):
    enrolled(support)
    codes = two_factor.backup_codes_create(user=support)
    client = Client()
    password_login(client, "support")
    response = client.post(VERIFY, {"code": codes[0].upper(), "next": ADMIN}, follow=True)
    assert response.status_code == 200 and b"Backup code used: 9 left" in response.content
    client.post("/accounts/logout/")
    again = Client()
    password_login(again, "support")
    response = again.post(VERIFY, {"code": codes[0], "next": ADMIN})
    assert response.status_code == 200 and b"two-factor-error" in response.content
    assert not verified(again)


def test_wrong_codes_are_limited_like_wrong_passwords(support):
    device = enrolled(support)
    backup = two_factor.backup_codes_create(user=support)
    # given the owner completed two-factor on this browser before
    owner = Client()
    password_login(owner, "support")
    owner.post(VERIFY, {"code": backup[0], "next": ADMIN})
    owner.post("/accounts/logout/")
    # when someone who has the password keeps guessing codes
    guesser = Client()
    password_login(guesser, "support", ip="198.51.100.66")
    limit = int(settings.RATE_LIMITS["two_factor"]["account"].split("/")[0])
    statuses = [
        guesser.post(VERIFY, {"code": wrong(device)}, REMOTE_ADDR="198.51.100.66").status_code
        for _ in range(limit + 1)
    ]
    # then past the limit their codes are not even checked
    assert statuses == [200] * limit + [429]
    refused = guesser.post(VERIFY, {"code": backup[1]}, REMOTE_ADDR="198.51.100.66")
    assert refused.status_code == 429 and b"too many wrong codes" in refused.content
    assert not verified(guesser)
    # and the owner's trusted browser still gets in (a backup code: the authenticator itself
    # waits out django-otp's own delay after the guesses)
    password_login(owner, "support", ip="192.0.2.10")
    response = owner.post(VERIFY, {"code": backup[2], "next": ADMIN}, REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 302 and verified(owner)


def test_a_superuser_resets_a_staff_members_two_factor_and_it_is_audited(root, support):
    enrolled(support)
    two_factor.backup_codes_create(user=support)
    # the staff member's verified session
    theirs = Client()
    theirs.force_login(support)
    session = theirs.session
    session["otp_device_id"] = TOTPDevice.objects.get(user=support).persistent_id
    session.save()
    assert verified(theirs)
    # the superuser, verified, resets it from the account's page
    enrolled(root)
    root_codes = two_factor.backup_codes_create(user=root)
    admin = Client()
    password_login(admin, "root")
    admin.post(VERIFY, {"code": root_codes[0]})
    account_page = admin.get(f"{ADMIN}auth/user/{support.pk}/change/").content.decode()
    reset_url = f"{ADMIN}auth/user/{support.pk}/two-factor-reset/"
    assert f'href="{reset_url}"' in account_page
    assert b"has an authenticator app set up" in admin.get(reset_url).content
    response = admin.post(reset_url, follow=True)
    assert response.status_code == 200 and b"Two-factor reset for support" in response.content
    # then their devices are gone, their session is no longer verified, and the log says so
    assert not TOTPDevice.objects.filter(user=support).exists()
    assert not StaticDevice.objects.filter(user=support).exists()
    assert not verified(theirs)
    (entry,) = AuditEntry.objects.filter(action=AuditEntry.Action.TWO_FACTOR_RESET)
    assert (entry.actor, entry.actor_name, entry.stripe_id) == (root, "root", "support")
    assert entry.result == AuditEntry.Result.DONE and "2 device(s)" in entry.message
    # and their next sign-in enrols a new authenticator
    again = Client()
    password_login(again, "support")
    assert again.get(VERIFY)["Location"].startswith(SETUP)


def test_staff_without_the_permission_cannot_reset(root, support):
    enrolled(root)
    codes = two_factor.backup_codes_create(user=support)
    enrolled(support)
    client = Client(raise_request_exception=False)
    password_login(client, "support")
    client.post(VERIFY, {"code": codes[0]})
    assert verified(client)
    reset_url = f"{ADMIN}auth/user/{root.pk}/two-factor-reset/"
    assert client.get(reset_url).status_code == 403
    assert client.post(reset_url).status_code == 403
    assert TOTPDevice.objects.filter(user=root).exists()
    assert not AuditEntry.objects.exists()


def test_nobody_resets_their_own_two_factor(root):
    codes = two_factor.backup_codes_create(user=root)
    enrolled(root)
    client = Client()
    password_login(client, "root")
    client.post(VERIFY, {"code": codes[0]})
    reset_url = f"{ADMIN}auth/user/{root.pk}/two-factor-reset/"
    assert b"two-factor-own" in client.get(reset_url).content
    client.post(reset_url)
    assert TOTPDevice.objects.filter(user=root).exists()


def test_with_the_setting_off_staff_sign_in_with_the_password_only(settings, support):
    settings.STAFF_TWO_FACTOR = False
    enrolled(support)
    client = Client()
    response = password_login(client, "support")
    assert response.status_code == 302 and response["Location"] == ADMIN
    assert verified(client)


def test_customers_are_not_asked_for_a_code(support):
    User.objects.create_user("shopper", "shopper@example.com", PASSWORD)
    client = Client()
    response = client.post("/accounts/login/", {"username": "shopper", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/orders/").status_code == 200
    assert client.get(VERIFY)["Location"].startswith(LOGIN)


def test_the_password_alone_does_not_make_a_staff_browser_trusted(support):
    enrolled(support)
    response = password_login(Client(), "support")
    assert response.status_code == 302 and devices.COOKIE not in response.cookies


def test_a_mailed_sign_in_link_still_leaves_the_code_to_give(support):
    # given the account over its limit, the owner on a new device is mailed a link
    for n in range(int(settings.RATE_LIMITS["login"]["account"].split("/")[0])):
        Client().post(LOGIN, {"username": "support", "password": "x"}, REMOTE_ADDR=f"10.7.0.{n}")
    owner = Client()
    assert password_login(owner, "support", ip="192.0.2.30").status_code == 429
    (message,) = mail.outbox
    link = "/" + re.search(r"https?://\S+", message.body).group(0).split("/", 3)[3]
    # when they use it, they are signed in, and the admin asks for their code
    response = owner.post(link)
    assert response.status_code == 303 and response["Location"] == ADMIN
    assert owner.get(ADMIN, follow=True).redirect_chain[-1][0].startswith(VERIFY)
    assert devices.COOKIE not in response.cookies
