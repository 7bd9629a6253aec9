"""Webhook signatures, and thin notifications read: local work, but stripe-python's code."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from typing import Any

import stripe
from stripe.v2.core import EventNotification

from billing.stripe_api.sdk import client


class SignatureInvalid(Exception):
    """A webhook delivery's Stripe-Signature does not verify; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def signature_verify(*, payload: str, header: str, secrets: Iterable[str], tolerance: int) -> int:
    """Check ``header`` against each secret (current first, then rotated-out ones).

    Returns the signed timestamp. Raises ``SignatureInvalid`` when no secret verifies or the
    timestamp is outside ``tolerance`` seconds either way: in the past (a replay of an old
    delivery) or in the future (stripe-python checks only the past; a future timestamp would
    let a captured delivery be replayed until then). ``secrets`` may be lazy: the ones after
    the first verifying secret are never read.
    """
    if not header:
        raise SignatureInvalid("missing Stripe-Signature header")
    if _signature_timestamp(header) > time.time() + tolerance:
        raise SignatureInvalid("timestamp is in the future, beyond the tolerance zone")
    reason = "no signing secret configured for this endpoint"
    for secret in secrets:
        if not secret:
            continue
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=tolerance)
        except stripe.SignatureVerificationError as exc:
            reason = exc.user_message or "signature does not match"
            continue
        return _signature_timestamp(header)
    raise SignatureInvalid(reason)


def _signature_timestamp(header: str) -> int:
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            return int(value)
    raise SignatureInvalid("Stripe-Signature header has no timestamp")


def signature_header(*, payload: str, secret: str, timestamp: int) -> str:
    """Sign ``payload`` the way Stripe does (for tests, benchmarks and operators' replays)."""
    signed = f"{timestamp}.{payload}".encode()
    signature = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def event_notification(payload: dict[str, Any]) -> EventNotification:
    """A thin event notification read as stripe-python reads it
    (``StripeClient.parse_event_notification``, whose signature check ``signature_verify``
    has made already): raises ``ValueError``, ``KeyError`` or ``TypeError`` for a body it
    cannot read. Nothing is requested from Stripe."""
    return EventNotification.from_json(payload, client())
