"""Shapes shared by every object type: lists, addresses, the account, events, endpoints."""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

ACCOUNT_ID = "acct_1FakeStripeEmu01"


ZERO_DECIMAL = {
    "bif",
    "clp",
    "djf",
    "gnf",
    "jpy",
    "kmf",
    "krw",
    "mga",
    "pyg",
    "rwf",
    "ugx",
    "vnd",
    "vuv",
    "xaf",
    "xof",
    "xpf",
}


def address() -> dict[str, Any]:
    return dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))


def list_object(data: list, url: str, has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def search_result(data: list, url: str, *, has_more: bool, next_page: str | None) -> dict:
    return {
        "object": "search_result",
        "data": data,
        "has_more": has_more,
        "next_page": next_page,
        "url": url,
    }


def add_interval(timestamp: int, interval: str, count: int = 1) -> int:
    """Advance by calendar intervals, clamping the day as Stripe's billing anchors do."""
    if interval == "day":
        return timestamp + 86400 * count
    if interval == "week":
        return timestamp + 7 * 86400 * count
    months = count * (12 if interval == "year" else 1)
    start = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


def billing_details(email=None, name=None) -> dict[str, Any]:
    return {"address": address(), "email": email, "name": name, "phone": None, "tax_id": None}


def account() -> dict[str, Any]:
    requirements = {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": [],
        "disabled_reason": None,
        "errors": [],
        "eventually_due": [],
        "past_due": [],
        "pending_verification": [],
    }
    return {
        "id": ACCOUNT_ID,
        "object": "account",
        "business_profile": {
            "annual_revenue": None,
            "estimated_worker_count": None,
            "mcc": None,
            "minority_owned_business_designation": None,
            "name": "fakestripe",
            "product_description": None,
            "support_address": None,
            "support_email": None,
            "support_phone": None,
            "support_url": None,
            "url": None,
        },
        "business_type": None,
        "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": True,
        "controller": {"type": "account"},
        "country": "US",
        "created": 1700000000,
        "default_currency": "usd",
        "details_submitted": True,
        "email": "emulator@example.com",
        "external_accounts": list_object([], f"/v1/accounts/{ACCOUNT_ID}/external_accounts"),
        "future_requirements": dict(requirements),
        "metadata": {},
        "payouts_enabled": True,
        "requirements": dict(requirements),
        "settings": {
            "dashboard": {"display_name": "fakestripe", "timezone": "Etc/UTC"},
            "payments": {"statement_descriptor": None},
        },
        "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
        "type": "standard",
    }


def webhook_endpoint(
    oid: str,
    now: int,
    *,
    url: str,
    enabled_events: list,
    api_version: str,
    description=None,
    metadata=None,
    secret: str,
) -> dict:
    return {
        "id": oid,
        "object": "webhook_endpoint",
        "api_version": api_version,
        "application": None,
        "created": now,
        "description": description,
        "enabled_events": enabled_events,
        "livemode": False,
        "metadata": metadata or {},
        "status": "enabled",
        "url": url,
        "_secret": secret,
    }


def event(
    oid: str,
    now: int,
    *,
    type_: str,
    api_version: str,
    data: dict,
    request: dict,
    pending_webhooks: int,
) -> dict[str, Any]:
    return {
        "id": oid,
        "object": "event",
        "api_version": api_version,
        "created": now,
        "data": data,
        "livemode": False,
        "pending_webhooks": pending_webhooks,
        "request": request,
        "type": type_,
    }


def deleted(oid: str, object_type: str) -> dict[str, Any]:
    return {"id": oid, "object": object_type, "deleted": True}
