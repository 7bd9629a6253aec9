"""Which account a typed name means: log in with a username or the account's email address.

The one rule, for the login backend and for every rate limit that counts per account (login,
password reset, sign-up): a name is NFKC-normalised as Django's login form does (so
"customer" in fullwidth or mathematical bold letters, or with a long s, U+017F, is
``customer``), then it is an account's username exactly, or else (with an ``@``) an
account's email in any case.
"""

from __future__ import annotations

import unicodedata

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser


def name_normalise(name: str) -> str:
    """What the login form makes of a typed name (``UsernameField``: NFKC, stripped)."""
    return unicodedata.normalize("NFKC", name or "").strip()


def account_find(name: str) -> AbstractBaseUser | None:
    """The account ``name`` logs in to, active or not."""
    name = name_normalise(name)
    if not name:
        return None
    users = get_user_model()._default_manager
    user = users.filter(username=name).first()
    if user is None and "@" in name:
        user = users.filter(email__iexact=name).first()
    return user


def account_key(name: str) -> str:
    """The counter key of whatever account ``name`` means: the account itself when one
    exists, whichever of its names and spellings was typed; otherwise the name caseless (so a
    limit tells nobody whether an account exists, and spellings of it share a counter)."""
    return account_key_for(account_find(name), name)


def account_key_for(user: AbstractBaseUser | None, name: str = "") -> str:
    """``account_key`` when the account (or its absence) is already known."""
    if user is not None:
        return f"user:{user.pk}"
    # NFKC again after casefolding, as Unicode's NFKC_Casefold does ("ß" -> "ss" and the like).
    return "name:" + unicodedata.normalize("NFKC", name_normalise(name).casefold())


class AccountBackend(ModelBackend):
    """ModelBackend that finds the account by ``account_find``: username, or email in any case.

    A login for an unknown name still runs the password hasher once, as ModelBackend does, so
    the time taken does not tell whether the account exists.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        user_model = get_user_model()
        if username is None:
            username = kwargs.get(user_model.USERNAME_FIELD)
        if not username or password is None:
            return None
        user = account_find(username)
        if user is None:
            user_model().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
