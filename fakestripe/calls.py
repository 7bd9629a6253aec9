"""What a handler receives (`Call`) and may answer (`Response`), apart from the emulator.

Kept out of `app` so that handler modules (the hosted pages answer HTML) need not import the
emulator that imports them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import DEFAULT_API_VERSION
from .errors import StripeError


@dataclass
class Call:
    """One API request as handlers see it."""

    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    request_id: str
    base_url: str
    api_key: str | None = None
    api_version: str = DEFAULT_API_VERSION
    idempotency_key: str | None = None


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, **headers: str) -> Response:
        # Compact JSON: the C encoder is ~10x faster than pretty-printing, clients don't care.
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status, body, {"Content-Type": "application/json", **headers})

    @classmethod
    def error(cls, error: StripeError) -> Response:
        """An API error with the headers Stripe sends beside it (e.g. on a 429)."""
        response = cls.json(error.status, error.body())
        response.headers.update(error.headers)
        return response
