"""Sign-up that reveals nothing about existing accounts, with one account per email address.

Starting a sign-up only sends an email, whatever the address: a link to finish the sign-up
when no account uses it, or a reminder to log in or reset the password when one does. The
page answers the same in both cases, so it cannot be used to find out who has an account, and
no account exists until the owner of the mailbox has chosen its password (nobody can create
an account on someone else's address and wait for them to confirm it).

The address is unique without regard to case: checked here, and enforced by a unique index on
``LOWER(email)`` (migration ``orders.0003``), which also settles two links finished at once.
"""

from __future__ import annotations

import secrets
from urllib.parse import urljoin

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse

SIGNUP_SALT = "orders.signup"
SIGNUP_LINK_MAX_AGE = 2 * 24 * 3600  # seconds a sign-up link stays valid


class SignupLinkInvalid(Exception):
    """The link is malformed, tampered with, or expired."""


class SignupLinkUsed(Exception):
    """An account already uses the link's address (the link was used, or raced another)."""


def site_url(path: str) -> str:
    """An absolute URL on the public site (for links in mail)."""
    return urljoin(settings.SITE_URL + "/", path.lstrip("/"))


def email_in_use(*, email: str) -> bool:
    return get_user_model()._default_manager.filter(email__iexact=email.strip()).exists()


def account_signup_start(*, email: str) -> None:
    """Mail ``email`` a link to finish signing up, or, if it has an account, a reminder."""
    email = get_user_model()._default_manager.normalize_email(email.strip())
    if email_in_use(email=email):
        template = "registration/signup_exists_email.txt"
        context = {
            "login_url": site_url(reverse("login")),
            "reset_url": site_url(reverse("password_reset")),
        }
    else:
        template = "registration/signup_email.txt"
        token = signing.dumps({"email": email}, salt=SIGNUP_SALT)
        context = {
            "finish_url": site_url(reverse("orders:signup_finish", args=[token])),
            "days": SIGNUP_LINK_MAX_AGE // 86400,
        }
    send_mail(
        subject="Your account at the Stripe shop",
        message=render_to_string(template, {"email": email, **context}),
        from_email=None,
        recipient_list=[email],
    )


def signup_link_email(*, token: str) -> str:
    """The address a sign-up link was sent to; raises SignupLinkInvalid if it is not valid."""
    try:
        data = signing.loads(token, salt=SIGNUP_SALT, max_age=SIGNUP_LINK_MAX_AGE)
    except signing.BadSignature:
        raise SignupLinkInvalid("This sign-up link is invalid or has expired.") from None
    email = data.get("email") if isinstance(data, dict) else None
    if not isinstance(email, str) or "@" not in email:
        raise SignupLinkInvalid("This sign-up link is invalid or has expired.")
    return email


def username_for(*, email: str) -> str:
    """The new account's username: its address if free, else a random one (never shown to others)."""
    users = get_user_model()._default_manager
    candidate = email.lower()
    if len(candidate) <= 150 and not users.filter(username=candidate).exists():
        return candidate
    return f"customer-{secrets.token_hex(6)}"


def account_signup_finish(*, token: str, password: str) -> AbstractBaseUser:
    """Create the account the link was sent for, with the password its mailbox owner chose."""
    email = signup_link_email(token=token)
    user_model = get_user_model()
    if email_in_use(email=email):
        raise SignupLinkUsed("An account already uses this address.")
    user = user_model(username=username_for(email=email), email=email)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        # The unique index on LOWER(email) (or the username) refused: another link won.
        raise SignupLinkUsed("An account already uses this address.") from None
    return user
