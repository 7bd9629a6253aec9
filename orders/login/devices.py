"""Trusted devices: browsers that have signed in to an account before (OWASP's device cookies).

A complete sign-in (the password, and the second factor when one is required) gives the
browser a signed cookie naming the account and a random device id. While an account or an
address is over its failure limit, a device the account trusts still signs in with the right
password: that is how the owner gets in while a stranger keeps the account "locked". The
device's own failures are counted under its id (``orders.login.limits``), so a stolen cookie
buys no more guesses than the lock it skips. One cookie remembers a few accounts, newest
first, each for ``settings.TRUSTED_DEVICE_MAX_AGE`` after its last sign-in.
"""

from __future__ import annotations

import secrets
import time

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing
from django.http import HttpRequest, HttpResponse

COOKIE = "trusted_device"
SALT = "orders.login.devices"
KEEP = 5  # accounts one browser is trusted for (people share computers; staff have two roles)


def _entries(request: HttpRequest) -> list[tuple[int, str, int]]:
    """The cookie's (account pk, device id, signed in at) entries still in date; [] if forged."""
    raw = request.COOKIES.get(COOKIE)
    if not raw:
        return []
    try:
        entries = signing.loads(raw, salt=SALT)
    except signing.BadSignature:
        return []
    if not isinstance(entries, list):
        return []
    oldest = time.time() - settings.TRUSTED_DEVICE_MAX_AGE
    return [
        (pk, device, at)
        for pk, device, at in (entry for entry in entries if len(entry) == 3)
        if isinstance(at, int) and at > oldest
    ]


def device_for(request: HttpRequest, *, user_pk: object) -> str | None:
    """This browser's device id for the account, when the account trusts it."""
    return next((device for pk, device, _ in _entries(request) if pk == user_pk), None)


def device_trust(request: HttpRequest, response: HttpResponse, *, user: AbstractBaseUser) -> None:
    """Mark this browser as a trusted device of ``user`` (a new id: a sign-in proves it anew)."""
    entries = [list(entry) for entry in _entries(request) if entry[0] != user.pk]
    entries.insert(0, [user.pk, secrets.token_urlsafe(16), int(time.time())])
    response.set_cookie(
        COOKIE,
        signing.dumps(entries[:KEEP], salt=SALT, compress=True),
        max_age=settings.TRUSTED_DEVICE_MAX_AGE,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
