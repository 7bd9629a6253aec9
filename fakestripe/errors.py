"""Errors shaped as Stripe sends them, so stripe-python raises the matching class."""

from __future__ import annotations

from typing import Any

DOC_BASE = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """An API error; `body()` is the JSON Stripe would answer with."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}  # response headers Stripe sends with this error
        self.extra = extra

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = DOC_BASE + self.code.replace("_", "-")
        if self.param:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, "invalid_request_error", message, param=param, code=code)


def missing_param(param: str) -> StripeError:
    return invalid(f"Missing required param: {param}.", param=param, code="parameter_missing")


def unknown_param(param: str) -> StripeError:
    return invalid(f"Received unknown parameter: {param}", param=param, code="parameter_unknown")


def no_such(noun: str, object_id: str, *, param: str = "id", status: int = 404) -> StripeError:
    # Stripe answers 404 for a path id and 400 for an id passed as a parameter.
    return StripeError(
        status,
        "invalid_request_error",
        f"No such {noun}: '{object_id}'",
        param=param,
        code="resource_missing",
    )


V2_CODES = {"resource_missing": "not_found"}


def v2_body(body: dict[str, Any], status: int) -> dict[str, Any]:
    """An error in API v2's shape, `{"error": {"type", "code", "message"}}`: a missing
    object is `not_found`, a field error `invalid_fields`, a 429 of type `rate_limit` (as
    stripe-python's v2 error classes read them)."""
    error = body.get("error") or {}
    code = error.get("code")
    if code in V2_CODES:
        code = V2_CODES[code]
    elif code is None and status == 404:
        code = "not_found"
    elif code is None or code.startswith("parameter_"):
        code = "invalid_fields" if status == 400 else code
    kind = "rate_limit" if status == 429 else error.get("type", "api_error")
    return {"error": {"type": kind, "code": code, "message": error.get("message")}}
