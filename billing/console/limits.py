"""Limits on what the console asks of Stripe, and one save at a time per object.

Stripe's rate limit is the account's, shared by checkout, webhooks' re-fetches and operators'
commands: one person clicking (or scripting) a console button must not spend it. Each person
has ``settings.CONSOLE_STRIPE_CALLS_PER_MINUTE`` console actions that call Stripe per minute;
past it they are told how long to wait. Counters and locks live in the default cache (Redis in
production, shared by every web process).
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache

_WINDOW = 60


def stripe_calls_wait(user: AbstractBaseUser) -> int:
    """Count one console action of ``user`` that calls Stripe; seconds to wait when over the
    limit (nothing was counted against Stripe then), else 0."""
    now = time.time()
    window = int(now // _WINDOW)
    key = f"billing:console-calls:{user.pk}:{window}"
    cache.add(key, 0, timeout=_WINDOW * 2)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=_WINDOW * 2)
        count = 1
    if count <= settings.CONSOLE_STRIPE_CALLS_PER_MINUTE:
        return 0
    return max(1, math.ceil((window + 1) * _WINDOW - now))


def wait_text(seconds: int) -> str:
    return (
        f"You have asked Stripe for {settings.CONSOLE_STRIPE_CALLS_PER_MINUTE} things from the "
        f"console this minute, the most one person may: try again in {seconds} s. Nothing was "
        "sent to Stripe."
    )


class Busy(Exception):
    """Someone else holds the lock still; nothing was done."""


@contextmanager
def one_at_a_time(name: str, *, wait: float = 15.0, hold: int = 60) -> Iterator[None]:
    """Run the block while no one else runs one under ``name`` (across processes).

    Waits up to ``wait`` seconds for the other holder, then raises ``Busy``. A holder that
    dies loses the lock after ``hold`` seconds.
    """
    key = f"billing:one-at-a-time:{name}"
    owner = secrets.token_hex(8)
    deadline = time.monotonic() + wait
    while not cache.add(key, owner, timeout=hold):
        if time.monotonic() > deadline:
            raise Busy(name)
        time.sleep(0.05)
    try:
        yield
    finally:
        if cache.get(key) == owner:
            cache.delete(key)
