"""Limits on guessing passwords and two-factor codes that a stranger cannot turn against the owner.

The rules follow OWASP's "Slow Down Online Guessing Attacks with Device Cookies":

- Only failures count (a wrong password, an unknown name, a wrong code), under three keys: the
  client's address, the account (failures from devices it does not trust) and, from a device
  the account trusts (``orders.login.devices``), that device. A success counts nowhere, so
  people sharing an address are not refused because they sign in often.
- The account is the one the typed name resolves to (``orders.auth.account_key``: NFKC,
  caseless, username or email), so no spelling of a name has a counter of its own.
- A trusted device under its own limit is let through whatever the address and the account
  counters say: the owner's usual browser signs in while a stranger fails on purpose.
- Anything else is refused while its address or its account is over the limit. A sign-in so
  refused still has its password checked, once: when it is right, the account's owner is
  mailed a one-time sign-in link (``orders.login.links``). The answer is the same 429 either
  way, so the lock never tells a guesser which password was right. Those checks are failures
  of the address too; past twice its limit, its attempts are refused without one, so no
  address can keep the password hasher busy (``unchecked``).

We do not use django-axes: while an account is locked it refuses the right password too, from
anywhere, which is exactly how anyone could keep anyone (staff included) out.

The counters are django-ratelimit's, in the default cache (Redis in production); rates are in
``settings.RATE_LIMITS`` under "login" and "two_factor" (a wrong code is counted like a wrong
password, in counters of its own: only someone who has the password can fail a code, so a
stranger's wrong passwords do not stop the owner entering theirs).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from config.throttle import client_ip
from orders.auth import account_find, account_key_for
from orders.login import devices


@dataclass(frozen=True)
class Attempt:
    """Who is trying: the counter keys of one sign-in or code entry."""

    group: str  # "login" or "two_factor"
    ip: str
    account: str
    device: str | None  # set when the account trusts this device and it is under its limit

    def counters(self) -> list[tuple[str, str]]:
        """The counters a failure of this attempt adds to."""
        trust = ("device", self.device) if self.device else ("account", self.account)
        return [("ip", self.ip), trust]


def _usage(group: str, kind: str, key: str, *, increment: bool = False) -> dict | None:
    # django-ratelimit reads the request for the method and the key only; both are given here.
    return get_usage(
        None,
        group=f"{group}:{kind}",
        key=lambda *_: key,
        rate=settings.RATE_LIMITS[group][kind],
        increment=increment,
    )


def _wait(group: str, kind: str, key: str) -> int | None:
    """Seconds until the ``kind`` counter of ``key`` is under its limit again; None if it is."""
    usage = _usage(group, kind, key)
    if usage is None or usage["count"] < usage["limit"]:
        return None
    return max(usage["time_left"], 1)


def attempt_for(
    request: HttpRequest, *, group: str, name: str = "", user: AbstractBaseUser | None = None
) -> Attempt:
    """The attempt of this request on the account ``user``, or the one ``name`` resolves to."""
    user = user if user is not None else account_find(name)
    device = devices.device_for(request, user_pk=user.pk) if user is not None else None
    if device is not None and _wait(group, "device", device) is not None:
        device = None  # over its own limit: from now on it is treated as any other device
    return Attempt(
        group=group, ip=client_ip(request), account=account_key_for(user, name), device=device
    )


def wait(attempt: Attempt) -> int | None:
    """Seconds before this attempt may be checked normally; None when it may be now."""
    if attempt.device is not None:
        return None
    waits = [_wait(attempt.group, kind, key) for kind, key in attempt.counters()]
    found = [seconds for seconds in waits if seconds is not None]
    return max(found) if found else None


def unchecked(attempt: Attempt) -> bool:
    """Whether a refused attempt is refused without checking its password: its address has
    failed twice its limit in this period (the owner's right password, which is not a failure,
    never brings their own address there)."""
    usage = _usage(attempt.group, "ip", attempt.ip)
    return usage is not None and usage["count"] >= 2 * usage["limit"]


def failure_record(attempt: Attempt) -> None:
    for kind, key in attempt.counters():
        _usage(attempt.group, kind, key, increment=True)


def link_mail_allowed(*, user: AbstractBaseUser) -> bool:
    """Count a one-time link mail to ``user``; False past ``RATE_LIMITS["login"]["link"]``."""
    usage = _usage("login", "link", account_key_for(user), increment=True)
    return usage is None or not usage["should_limit"]


@receiver(user_login_failed, dispatch_uid="orders.login.limits")
def _login_failure_count(sender, credentials: dict, request: HttpRequest | None = None, **kwargs):
    """Every failed ``authenticate()`` of a web request counts: whichever login form it came
    from (the shop's, the admin's), and refused attempts too, which keep a lock in place."""
    if request is not None and request.method == "POST":
        name = credentials.get("username") or ""
        failure_record(attempt_for(request, group="login", name=name))
