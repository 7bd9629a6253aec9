"""One-time sign-in links: what the right password earns while sign-in is limited.

When an account or an address is over its failure limit, the right password from a device the
account does not trust does not sign in (a guesser could be the one who typed it); the
account's owner is mailed a link instead, and opening it from their mailbox signs them in.

A link is signed (``SECRET_KEY``, a salt of its own), works for
``settings.LOGIN_LINK_MAX_AGE`` seconds, and works once: it carries a digest of the account's
password hash and last login, and using it records a login, so a used link (and any mailed
before a later sign-in or a password change) no longer matches. It is checked and spent under
a lock on the account's row, so two clicks at once sign in once.

The mail is sent by the Celery worker, and a task is published for every refused sign-in,
right password or not: the time a refusal takes says nothing about the password.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from config import celery
from orders.accounts import site_url
from orders.login import limits

logger = logging.getLogger(__name__)

SALT = "orders.login.link"
TASK = "orders.login_link_send"


class LinkInvalid(Exception):
    """The link is malformed, tampered with, expired or already used."""


def _state(user: AbstractBaseUser) -> str:
    """What a link is bound to: changes when the account signs in or changes its password."""
    login = user.last_login.isoformat() if user.last_login else ""
    value = f"{user.pk}|{user.password}|{login}|{user.is_active}"
    return salted_hmac(SALT, value, algorithm="sha256").hexdigest()[:32]


def link_make(*, user: AbstractBaseUser, next_url: str) -> str:
    return signing.dumps({"u": user.pk, "s": _state(user), "n": next_url}, salt=SALT)


def _claims(token: str) -> dict:
    try:
        claims = signing.loads(token, salt=SALT, max_age=settings.LOGIN_LINK_MAX_AGE)
    except signing.BadSignature:
        raise LinkInvalid("This sign-in link is invalid or has expired.") from None
    return claims


def _checked(user: AbstractBaseUser | None, claims: dict) -> AbstractBaseUser:
    if user is None or not user.is_active or not constant_time_compare(_state(user), claims["s"]):
        raise LinkInvalid("This sign-in link has been used, or a newer sign-in replaced it.")
    return user


def link_read(*, token: str) -> tuple[AbstractBaseUser, str]:
    """The account a link signs in to and where it leads; raises LinkInvalid. Spends nothing."""
    claims = _claims(token)
    user = get_user_model()._default_manager.filter(pk=claims["u"]).first()
    return _checked(user, claims), claims["n"]


def link_use(*, token: str) -> tuple[AbstractBaseUser, str]:
    """Spend a link: the account to sign in and where to go next; raises LinkInvalid."""
    claims = _claims(token)
    with transaction.atomic():
        users = get_user_model()._default_manager.select_for_update()
        user = _checked(users.filter(pk=claims["u"]).first(), claims)
        user.last_login = timezone.now()
        user.save(update_fields=["last_login"])
    return user, claims["n"]


def link_send_later(*, user: AbstractBaseUser | None, next_url: str) -> None:
    """Have the worker mail ``user`` a link; published even for no user (see the docstring)."""
    try:
        celery.task(TASK).delay(user.pk if user is not None else None, next_url)
    except Exception:
        # The broker is down: the person is told to wait, as for any refusal.
        logger.exception("could not queue a sign-in link mail")


def link_mail(*, user_id: int | None, next_url: str) -> bool:
    """Mail the account a one-time sign-in link, within ``RATE_LIMITS["login"]["link"]``."""
    if user_id is None:
        return False
    user = get_user_model()._default_manager.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email:
        logger.warning("sign-in link for account %s not sent: no email address", user_id)
        return False
    if not limits.link_mail_allowed(user=user):
        logger.warning("sign-in link for account %s not sent: mail limit reached", user_id)
        return False
    url = site_url(reverse("login_link", args=[link_make(user=user, next_url=next_url)]))
    context = {
        "user": user,
        "url": url,
        "minutes": settings.LOGIN_LINK_MAX_AGE // 60,
        "reset_url": site_url(reverse("password_reset")),
        "shop_name": settings.SHOP_NAME,
    }
    send_mail(
        subject=f"Your sign-in link for {settings.SHOP_NAME}",
        message=render_to_string("registration/login_link_email.txt", context),
        from_email=None,
        recipient_list=[user.email],
    )
    return True
