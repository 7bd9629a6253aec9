"""Login limits that count failures on the account a name means, however it is spelled, with a
lockout a stranger cannot use to keep the owner out (orders/login/limits.py): the owner's
trusted device still signs in, and the right password from a new device earns a one-time link
by mail. Through the real login pages, the shop's and the admin's."""

from __future__ import annotations

import re
import threading

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model, user_login_failed
from django.core import mail
from django.db import connection
from django.test import Client

from orders.login import devices

pytestmark = pytest.mark.django_db
User = get_user_model()
PASSWORD = "correct-horse-battery-9"
SHOP_LOGIN = "/accounts/login/"
ADMIN_LOGIN = f"/{settings.ADMIN_URL}login/"
LOGINS = [SHOP_LOGIN, ADMIN_LOGIN]


def fullwidth(text: str) -> str:
    """Fullwidth letters (East Asian keyboards type them), which NFKC makes ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def bold(text: str) -> str:
    """Mathematical bold small letters."""
    return "".join(chr(0x1D41A + ord(c) - ord("a")) if "a" <= c <= "z" else c for c in text)


def long_s(text: str) -> str:
    """The long s, U+017F, for each s."""
    return text.replace("s", "\u017f")


SPELLINGS = [fullwidth("customer"), bold("customer"), long_s("customer"), "CUSTOMER@example.COM"]


def limit(group: str, kind: str) -> int:
    return int(settings.RATE_LIMITS[group][kind].split("/")[0])


@pytest.fixture
def customer():
    return User.objects.create_user("customer", "customer@example.com", PASSWORD)


@pytest.fixture
def support():
    return User.objects.create_user(
        "support", "support@example.com", PASSWORD, is_staff=True, is_superuser=True
    )


@pytest.fixture
def failed_logins():
    seen: list[str] = []

    def record(sender, credentials, **kwargs):
        seen.append(credentials.get("username"))

    user_login_failed.connect(record)
    yield seen
    user_login_failed.disconnect(record)


def login(client: Client, username: str, password: str, ip: str, path: str = SHOP_LOGIN):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def fail_from_many_addresses(username: str, count: int, path: str = SHOP_LOGIN) -> list[int]:
    return [
        login(Client(), username, f"guess-{n}", ip=f"198.51.100.{n}", path=path).status_code
        for n in range(count)
    ]


def link_from(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0).split("/", 3)[3]


# --- One counter per account, however its name is written ---------------------------------


def test_unicode_spellings_of_a_name_share_its_counter(customer):
    # given the account's limit of wrong passwords reached under its plain name
    assert fail_from_many_addresses("customer", limit("login", "account")) == [200] * 10
    # then no other spelling of the same account gets a counter of its own
    for spelling in SPELLINGS:
        client = Client()
        response = login(client, spelling, PASSWORD, ip="203.0.113.80")
        assert response.status_code == 429, spelling
        assert not signed_in(client)


def test_guesses_under_every_spelling_count_together(customer):
    statuses = [
        login(Client(), spelling, f"guess-{n}", ip=f"198.51.100.{n}").status_code
        for n, spelling in enumerate(SPELLINGS * 3)
    ]
    assert statuses == [200] * 10 + [429] * 2


def test_unknown_names_are_counted_caselessly_and_reveal_nothing(customer):
    statuses = fail_from_many_addresses(fullwidth("GHOST"), 5) + fail_from_many_addresses(
        "ghost", 6
    )
    assert statuses == [200] * 10 + [429]
    # and the real account is not affected by a stranger's name
    assert login(Client(), "customer", PASSWORD, ip="203.0.113.81").status_code == 302


def test_password_reset_spellings_of_an_address_share_its_counter(customer):
    spellings = [
        "customer@example.com",
        long_s("customer") + "@example.com",
        "CUSTOMER@EXAMPLE.COM",
        "customer@" + fullwidth("example") + ".com",
        "Customer@Example.com",
    ]
    statuses = [
        Client()
        .post("/accounts/password_reset/", {"email": email}, REMOTE_ADDR=f"10.3.1.{n}")
        .status_code
        for n, email in enumerate(spellings)
    ]
    per_email = limit("password_reset", "account")
    assert 429 not in statuses[:per_email]
    assert statuses[per_email:] == [429] * (len(spellings) - per_email)
    assert len(mail.outbox) <= per_email


def test_sign_up_spellings_of_an_address_share_its_counter():
    spellings = [
        "new@example.com",
        "NEW@example.com",
        fullwidth("new") + "@example.com",
        "new@" + fullwidth("example") + ".com",
    ]
    statuses = [
        Client().post("/signup/", {"email": email}, REMOTE_ADDR=f"10.4.1.{n}").status_code
        for n, email in enumerate(spellings)
    ]
    per_email = limit("signup", "account")
    assert 429 not in statuses[:per_email] and statuses[per_email:] == [429]


# --- A stranger cannot keep the owner out -------------------------------------------------


@pytest.mark.parametrize("path", LOGINS)
def test_owner_on_a_new_device_is_mailed_a_one_time_link_not_a_session(path, support):
    # given ten wrong passwords for the account from ten addresses, on both login pages
    assert fail_from_many_addresses("support", 5, SHOP_LOGIN) == [200] * 5
    assert fail_from_many_addresses("support", 5, ADMIN_LOGIN) == [200] * 5
    # when the owner gives the right password from a fresh address on a new device
    owner = Client()
    response = login(owner, "support", PASSWORD, ip="203.0.113.90", path=path)
    # then they are not signed in, and are told a link was mailed
    assert response.status_code == 429 and not signed_in(owner)
    assert "we emailed you a one-time sign-in link" in response.content.decode()
    (message,) = mail.outbox
    assert message.to == ["support@example.com"]
    link = "/" + link_from(message)
    # when they open the link: a page asks (a mail scanner's visit spends nothing) ...
    page = owner.get(link)
    assert page.status_code == 200 and b"login-link-confirm" in page.content
    assert not signed_in(owner)
    # ... and its button signs them in, once
    response = owner.post(link, REMOTE_ADDR="203.0.113.90")
    assert response.status_code == 303 and signed_in(owner)
    assert response["Location"] == ("/" if path == SHOP_LOGIN else f"/{settings.ADMIN_URL}")
    assert Client().post(link).status_code == 400
    assert Client().get(link).status_code == 400


def test_a_wrong_password_over_the_limit_is_answered_the_same_and_mails_nothing(support):
    fail_from_many_addresses("support", limit("login", "account"))
    wrong = login(Client(), "support", "not-it", ip="203.0.113.91")
    right = login(Client(), "support", PASSWORD, ip="203.0.113.92")
    assert wrong.status_code == right.status_code == 429
    assert wrong["Retry-After"] and right["Retry-After"]
    assert _without_tokens(wrong.content) == _without_tokens(right.content)
    assert len(mail.outbox) == 1  # for the right one only


def _without_tokens(html: bytes) -> bytes:
    html = re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", html)
    return re.sub(rb'nonce="[^"]+"', b"", html)


def test_an_expired_link_is_refused(support, settings):
    fail_from_many_addresses("support", limit("login", "account"))
    login(Client(), "support", PASSWORD, ip="203.0.113.93")
    link = "/" + link_from(mail.outbox[0])
    settings.LOGIN_LINK_MAX_AGE = -1
    client = Client()
    response = client.post(link)
    assert response.status_code == 400 and b"expired" in response.content
    assert not signed_in(client)


def test_a_link_dies_when_the_owner_signs_in_otherwise(support):
    fail_from_many_addresses("support", limit("login", "account"))
    trusted = Client()
    login(trusted, "support", PASSWORD, ip="203.0.113.94")
    link = "/" + link_from(mail.outbox[0])
    support.refresh_from_db()
    support.set_password("another-long-password-2")
    support.save()
    assert Client().post(link).status_code == 400


def test_link_mails_are_limited_per_account(support):
    fail_from_many_addresses("support", limit("login", "account"))
    for n in range(limit("login", "link") + 2):
        assert login(Client(), "support", PASSWORD, ip=f"203.0.113.{n}").status_code == 429
    assert len(mail.outbox) == limit("login", "link")


@pytest.mark.parametrize("path", LOGINS)
def test_the_owner_on_a_trusted_device_signs_in_straight_away(path, support):
    # given the owner signed in on this browser before
    owner = Client()
    assert login(owner, "support", PASSWORD, ip="203.0.113.10", path=path).status_code == 302
    assert devices.COOKIE in owner.cookies
    owner.post("/accounts/logout/")
    # when a stranger fails ten times from ten addresses
    fail_from_many_addresses("support", limit("login", "account"), path)
    # then the owner's browser signs in from anywhere, without a mail
    response = login(owner, "support", PASSWORD, ip="192.0.2.77", path=path)
    assert response.status_code == 302 and signed_in(owner)
    assert mail.outbox == []


def test_only_the_accounts_own_device_skips_the_lock(support, customer):
    # given a browser the owner signed in on, one where only another account did, a forged
    # cookie, and the account over its limit
    owner, shared, forged = Client(), Client(), Client()
    login(owner, "support", PASSWORD, ip="203.0.113.11")
    login(shared, "customer", PASSWORD, ip="203.0.113.11")
    forged.cookies[devices.COOKIE] = owner.cookies[devices.COOKIE].value[:-4] + "AAAA"
    fail_from_many_addresses("support", limit("login", "account"))
    # then only the owner's browser signs in
    assert login(owner, "support", PASSWORD, ip="203.0.113.11").status_code == 302
    assert login(shared, "support", PASSWORD, ip="203.0.113.11").status_code == 429
    assert login(forged, "support", PASSWORD, ip="203.0.113.11").status_code == 429


def test_a_trusted_device_has_its_own_limit(support):
    device = Client()
    login(device, "support", PASSWORD, ip="203.0.113.13")
    fail_from_many_addresses("support", limit("login", "account"))
    # a stolen cookie is worth no more guesses than the lock it skips
    guesses = [login(device, "support", f"g{n}", ip="203.0.113.13").status_code for n in range(11)]
    assert guesses == [200] * 10 + [429]
    assert login(device, "support", PASSWORD, ip="203.0.113.13").status_code == 429


# --- The address limit counts failures only -----------------------------------------------


def test_many_successful_logins_from_one_address_are_fine(customer):
    per_ip = limit("login", "ip")
    statuses = [
        login(Client(), "customer", PASSWORD, ip="203.0.113.20").status_code
        for _ in range(per_ip + 5)
    ]
    assert statuses == [302] * (per_ip + 5)


def test_others_failing_from_a_shared_address_do_not_lock_out_its_regulars(customer):
    regular = Client()
    login(regular, "customer", PASSWORD, ip="203.0.113.21")
    per_ip = limit("login", "ip")
    for n in range(per_ip):
        login(Client(), f"someone-{n}", "wrong", ip="203.0.113.21")
    assert login(Client(), "customer", PASSWORD, ip="203.0.113.21").status_code == 429
    assert login(regular, "customer", PASSWORD, ip="203.0.113.21").status_code == 302


def test_an_address_far_over_its_limit_is_refused_without_checking_passwords(
    customer, failed_logins
):
    per_ip = limit("login", "ip")
    statuses = [
        login(Client(), f"user-{n}", "wrong", ip="203.0.113.30").status_code
        for n in range(2 * per_ip + 5)
    ]
    assert statuses == [200] * per_ip + [429] * (per_ip + 5)
    # refused attempts are checked (and counted) up to twice the limit, then not at all
    assert len(failed_logins) == 2 * per_ip


@pytest.mark.django_db(transaction=True)
def test_a_link_opened_twice_at_once_signs_in_once(support):
    fail_from_many_addresses("support", limit("login", "account"))
    login(Client(), "support", PASSWORD, ip="203.0.113.95")
    link = "/" + link_from(mail.outbox[0])
    start = threading.Barrier(4)
    statuses: list[int] = []

    def use():
        start.wait()
        try:
            statuses.append(Client().post(link).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [303, 400, 400, 400]
