"""Sign-up without account enumeration, one account per email address, login by email, and
rate limits on login (customer and admin), sign-up and password reset."""

from __future__ import annotations

import re
import threading

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model, user_login_failed
from django.core import mail, signing
from django.db import IntegrityError, transaction
from django.test import Client

from orders import accounts

pytestmark = pytest.mark.django_db
User = get_user_model()
PASSWORD = "correct-horse-battery-9"


def link_in(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0)


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


@pytest.fixture
def existing(django_user_model):
    return django_user_model.objects.create_user("alice", "Alice@Example.com", PASSWORD)


# --- Sign-up -------------------------------------------------------------------------------


def test_signup_mails_a_link_and_the_account_exists_once_its_password_is_chosen(client):
    # when someone asks to sign up with a new address
    response = client.post("/signup/", {"email": "new.customer@example.com"})
    # then they are told to check their email, and nothing exists yet
    assert response.status_code == 303 and response["Location"] == "/signup/sent/"
    assert not User.objects.filter(email__iexact="new.customer@example.com").exists()
    (message,) = mail.outbox
    assert message.to == ["new.customer@example.com"]
    # when they follow the link and choose a password
    finish = path_of(link_in(message))
    page = client.get(finish)
    assert page.status_code == 200 and b"new.customer@example.com" in page.content
    response = client.post(finish, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    # then the account exists, they are logged in, and the link is spent
    assert response.status_code == 303 and response["Location"] == "/"
    user = User.objects.get(email="new.customer@example.com")
    assert user.is_active and user.check_password(PASSWORD)
    assert client.get("/orders/").status_code == 200
    assert Client().get(finish).status_code == 409


def test_signup_answers_the_same_for_an_existing_address(client, existing):
    # when one person signs up with a new address and another with an existing one
    # (in another case)
    fresh = Client().post("/signup/", {"email": "fresh@example.com"}, follow=True)
    taken = Client().post("/signup/", {"email": "ALICE@example.com"}, follow=True)
    # then both see exactly the same thing
    assert fresh.status_code == taken.status_code == 200
    assert fresh.redirect_chain == taken.redirect_chain
    assert _without_tokens(fresh.content) == _without_tokens(taken.content)
    # and no second account exists for the taken address: its owner is told instead
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1
    to_owner = next(m for m in mail.outbox if m.to == ["ALICE@example.com"])
    assert "You already have an account" in to_owner.body
    assert "/signup/finish/" not in to_owner.body


def _without_tokens(html: bytes) -> bytes:
    """The page less what differs on every response anyway (CSRF token, CSP nonce)."""
    html = re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", html)
    return re.sub(rb'nonce="[^"]+"', b"", html)


def test_signup_asks_for_no_username(client):
    """A chosen username would have to be refused when taken, which tells it exists."""
    page = client.get("/signup/").content.decode()
    assert 'name="email"' in page and 'name="username"' not in page


def test_a_link_finished_after_the_address_got_an_account_creates_nothing(client, existing):
    token = signing.dumps({"email": "alice@example.com"}, salt=accounts.SIGNUP_SALT)
    response = client.post(
        f"/signup/finish/{token}/", {"new_password1": PASSWORD, "new_password2": PASSWORD}
    )
    assert response.status_code == 409
    assert User.objects.filter(email__iexact="alice@example.com").count() == 1


def test_tampered_and_expired_links_are_refused(client, settings):
    token = signing.dumps({"email": "bob@example.com"}, salt=accounts.SIGNUP_SALT)
    tampered = token.replace(token.split(":")[0], signing.b64_encode(b'{"email":"x@y.z"}').decode())
    assert client.get(f"/signup/finish/{tampered}/").status_code == 400
    expired = signing.TimestampSigner(salt=accounts.SIGNUP_SALT)
    old = expired.sign_object({"email": "bob@example.com"})
    accounts_max_age = accounts.SIGNUP_LINK_MAX_AGE
    try:
        accounts.SIGNUP_LINK_MAX_AGE = -1
        assert client.get(f"/signup/finish/{old}/").status_code == 400
    finally:
        accounts.SIGNUP_LINK_MAX_AGE = accounts_max_age
    assert not User.objects.filter(email="bob@example.com").exists()


def test_the_database_refuses_a_second_account_for_an_address_in_any_case(existing):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user("alice2", "alice@EXAMPLE.com", PASSWORD)
    # accounts without an address are not affected
    User.objects.create_user("no-mail-1", "", PASSWORD)
    User.objects.create_user("no-mail-2", "", PASSWORD)


@pytest.mark.django_db(transaction=True)
def test_two_links_for_one_address_finished_at_once_make_one_account():
    token = signing.dumps({"email": "race@example.com"}, salt=accounts.SIGNUP_SALT)
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def finish():
        start.wait()
        try:
            accounts.account_signup_finish(token=token, password=PASSWORD)
            outcomes.append("created")
        except accounts.SignupLinkUsed:
            outcomes.append("used")
        finally:
            from django.db import connection

            connection.close()

    threads = [threading.Thread(target=finish) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["created", "used", "used", "used"]
    assert User.objects.filter(email__iexact="race@example.com").count() == 1


# --- Login ---------------------------------------------------------------------------------


def test_login_with_the_email_address_in_any_case_or_the_username(existing):
    for name in ("alice", "alice@example.com", "ALICE@EXAMPLE.COM"):
        client = Client()
        response = client.post("/accounts/login/", {"username": name, "password": PASSWORD})
        assert response.status_code == 302, name
        assert client.get("/orders/").status_code == 200
    response = Client().post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200 and b"correct username and password" in response.content


# --- Rate limits ---------------------------------------------------------------------------


@pytest.fixture
def failed_logins():
    seen: list[str] = []

    def record(sender, credentials, **kwargs):
        seen.append(credentials.get("username"))

    user_login_failed.connect(record)
    yield seen
    user_login_failed.disconnect(record)


def login(client: Client, username: str, password: str, ip: str = "203.0.113.7", path=None):
    return client.post(
        path or "/accounts/login/",
        {"username": username, "password": password},
        REMOTE_ADDR=ip,
    )


@pytest.mark.parametrize("path", ["/accounts/login/", f"/{settings.ADMIN_URL}login/"])
def test_forty_wrong_passwords_then_the_right_one_from_a_new_device_is_refused(
    path, admin_user, failed_logins
):
    # given an attacker guessing the admin's password from one address
    limit = int(settings.RATE_LIMITS["login"]["account"].split("/")[0])
    statuses = [login(Client(), "admin", f"guess-{n}", path=path).status_code for n in range(40)]
    # then after the account's limit every attempt is refused; each is still checked once
    # (a right one earns a mailed link, see tests/test_login_limits.py) and counted
    assert statuses[:limit] == [200] * limit
    assert set(statuses[limit:]) == {429}
    assert len(failed_logins) == 40
    # and the right password from a new device does not sign in while the limit lasts
    client = Client()
    response = login(client, "admin", "password", ip="198.51.100.9", path=path)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    page = response.content.decode()
    assert "Too many" in page and "minute" in page
    assert int(response["Retry-After"]) > 0


def test_the_limit_counts_the_account_however_it_is_written(existing):
    limit = int(settings.RATE_LIMITS["login"]["account"].split("/")[0])
    for n in range(limit):
        login(Client(), "Alice@example.com" if n % 2 else "alice@EXAMPLE.com", "wrong")
    assert login(Client(), "alice@example.com", PASSWORD).status_code == 429
    # another account is not affected
    other = User.objects.create_user("bob", "bob@example.com", PASSWORD)
    assert login(Client(), other.username, PASSWORD).status_code == 302


def test_one_address_trying_many_accounts_is_limited(existing, failed_logins):
    limit = int(settings.RATE_LIMITS["login"]["ip"].split("/")[0])
    statuses = [login(Client(), f"user{n}", "wrong").status_code for n in range(limit + 3)]
    assert statuses[:limit] == [200] * limit and set(statuses[limit:]) == {429}
    # the same accounts from another address still get an answer
    assert login(Client(), "alice", PASSWORD, ip="198.51.100.20").status_code == 302


def test_unknown_and_existing_accounts_are_limited_alike(existing):
    limit = int(settings.RATE_LIMITS["login"]["account"].split("/")[0])
    known = [login(Client(), "alice", "wrong", ip=f"10.0.0.{n}").status_code for n in range(12)]
    unknown = [login(Client(), "ghost", "wrong", ip=f"10.0.1.{n}").status_code for n in range(12)]
    assert known == unknown == [200] * limit + [429] * (12 - limit)


def test_signup_is_limited_per_address_and_per_client():
    per_email = int(settings.RATE_LIMITS["signup"]["account"].split("/")[0])
    statuses = [
        Client().post("/signup/", {"email": "target@example.com"}, REMOTE_ADDR=f"10.1.0.{n}")
        for n in range(per_email + 2)
    ]
    assert [r.status_code for r in statuses] == [303] * per_email + [429, 429]
    assert len(mail.outbox) == per_email
    per_ip = int(settings.RATE_LIMITS["signup"]["ip"].split("/")[0])
    statuses = [
        Client().post("/signup/", {"email": f"p{n}@example.com"}, REMOTE_ADDR="10.2.0.1")
        for n in range(per_ip + 1)
    ]
    assert [r.status_code for r in statuses][-2:] == [303, 429]
    assert b"too many sign-up requests" in statuses[-1].content


def test_password_reset_is_limited_per_address(existing):
    per_email = int(settings.RATE_LIMITS["password_reset"]["account"].split("/")[0])
    statuses = [
        Client()
        .post(
            "/accounts/password_reset/", {"email": "alice@example.com"}, REMOTE_ADDR=f"10.3.0.{n}"
        )
        .status_code
        for n in range(per_email + 2)
    ]
    assert statuses == [302] * per_email + [429, 429]
    assert len(mail.outbox) == per_email


def test_behind_the_proxy_the_client_is_the_last_forwarded_address(settings, existing):
    settings.BEHIND_TLS_PROXY = True
    limit = int(settings.RATE_LIMITS["login"]["ip"].split("/")[0])

    def via_proxy(forwarded_for: str, username: str, password: str) -> int:
        return (
            Client()
            .post(
                "/accounts/login/",
                {"username": username, "password": password},
                REMOTE_ADDR="10.9.9.9",  # the proxy
                HTTP_X_FORWARDED_FOR=forwarded_for,
            )
            .status_code
        )

    # a client that forges the first X-Forwarded-For entry is still counted by its own address
    for n in range(limit):
        via_proxy(f"1.2.3.{n}, 203.0.113.50", f"u{n}", "x")
    assert via_proxy("1.2.3.200, 203.0.113.50", "alice", PASSWORD) == 429
    # another client behind the same proxy is not
    assert via_proxy("203.0.113.51", "alice", PASSWORD) == 302
