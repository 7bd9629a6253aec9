"""How Stripe objects read to a person: status in words, amounts, masked secrets, JSON.

Pure functions of the object's data (as mirrored in ``stripe_data``); no queries, no Stripe
calls. Used by the support console's pages and the order page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.admin.utils import quote
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from billing import types
from billing.money import format_amount
from config import sensitive

# --- Secrets ---------------------------------------------------------------------------------


def mask(value: str | None) -> str:
    """``sk_test_51Hx…4f2a`` → ``sk_test_…4f2a``: the kind of secret and its last 4, no more."""
    return sensitive.mask_secret(str(value)) if value else ""


def mask_secrets(text: str) -> str:
    """Every secret and card number in ``text`` masked (``config.sensitive``'s detector)."""
    return sensitive.masked(text)


HIDDEN = "(hidden)"


def hidden(data: Any, key: Any = None) -> Any:
    """``data`` as a page may show it: the value of a key named like a credential hidden, every
    string (keys included) masked, lists and dicts walked."""
    if key is not None and data not in (None, "") and sensitive.is_sensitive_key(str(key)):
        return HIDDEN
    if isinstance(data, dict):
        return {mask_secrets(str(k)): hidden(v, k) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [hidden(item) for item in data]
    if isinstance(data, str):
        return mask_secrets(data)
    if isinstance(data, int) and not isinstance(data, bool):
        return data if data < 10**12 else mask_secrets(str(data))
    return data


def pretty_json(data: Any) -> str:
    """Indented JSON, keys sorted, secrets, card numbers and credentials hidden: for a collapsed
    "raw data" block."""
    return json.dumps(hidden(data), indent=2, sort_keys=True, default=str)


def stripe_id(value: Any) -> str | None:
    """An id from a field that is either an id or an expanded object."""
    if isinstance(value, dict):
        return value.get("id")
    return value or None


def timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if isinstance(value, int) else None


def dashboard_url(object_type: str, stripe_id_: str, livemode: bool | None = None) -> str:
    """The object in Stripe's Dashboard; test-mode objects live under ``/test/``."""
    stripe_type = types.get(object_type)
    path = stripe_type.dashboard if stripe_type else ""
    if not path or not stripe_id_:
        return ""
    live = settings.STRIPE_LIVE_MODE if livemode is None else livemode
    return f"https://dashboard.stripe.com/{'' if live else 'test/'}{path}/{stripe_id_}"


# --- Amounts ---------------------------------------------------------------------------------


def _first_item_price(data: dict[str, Any]) -> dict[str, Any]:
    items = ((data.get("items") or {}).get("data")) or []
    price = (items[0].get("price") or items[0].get("plan")) if items else None
    return price if isinstance(price, dict) else {}


def amount_of(object_type: str, data: dict[str, Any]) -> tuple[int | None, str | None]:
    """The amount a person means for this type, in minor units, and its currency."""
    currency = data.get("currency")
    if object_type in ("charge", "payment_intent", "refund", "dispute"):
        return data.get("amount"), currency
    if object_type == "checkout.session":
        return data.get("amount_total"), currency
    if object_type == "invoice":
        return data.get("total", data.get("amount_due")), currency
    if object_type == "price":
        return data.get("unit_amount"), currency
    if object_type == "subscription":
        price = _first_item_price(data)
        quantity = ((data.get("items") or {}).get("data") or [{}])[0].get("quantity") or 1
        if price.get("unit_amount") is None:
            return None, None
        return price["unit_amount"] * quantity, price.get("currency")
    return None, None


def amount_text(object_type: str, data: dict[str, Any]) -> str:
    amount, currency = amount_of(object_type, data)
    text = format_amount(amount, currency)
    recurring = (
        data.get("recurring")
        if object_type == "price"
        else _first_item_price(data).get("recurring")
        if object_type == "subscription"
        else None
    )
    if text and isinstance(recurring, dict) and recurring.get("interval"):
        count = recurring.get("interval_count") or 1
        every = recurring["interval"] if count == 1 else f"{count} {recurring['interval']}s"
        text = f"{text} / {every}"
    if object_type == "charge" and data.get("amount_refunded"):
        text += f" ({format_amount(data['amount_refunded'], currency)} refunded)"
    return text


# --- Status in words -------------------------------------------------------------------------


def day(value: Any) -> str:
    """A Stripe timestamp's date in the site's ``DATE_FORMAT``."""
    when = timestamp(value)
    return date_format(timezone.localtime(when), "DATE_FORMAT") if when else ""


def _charge_status(data: dict[str, Any]) -> str:
    status = data.get("status")
    if status == "failed":
        reason = data.get("failure_message") or data.get("failure_code") or "no reason given"
        return f"failed: {reason}"
    if status == "pending":
        return "pending"
    if data.get("refunded"):
        return "refunded in full"
    if data.get("amount_refunded"):
        return "succeeded, partially refunded"
    if status == "succeeded" and data.get("captured") is False:
        return "authorised, not captured"
    return "succeeded" if status == "succeeded" else (status or "unknown")


_PAYMENT_INTENT_WORDS = {
    "requires_payment_method": "awaiting a payment method",
    "requires_confirmation": "awaiting confirmation",
    "requires_action": "awaiting customer action (e.g. 3-D Secure)",
    "processing": "processing",
    "requires_capture": "authorised, awaiting capture",
    "canceled": "canceled",
    "succeeded": "succeeded",
}


def _payment_intent_status(data: dict[str, Any]) -> str:
    status = data.get("status") or ""
    words = _PAYMENT_INTENT_WORDS.get(status, status or "unknown")
    error = data.get("last_payment_error") or {}
    if status == "requires_payment_method" and error:
        return f"last attempt failed: {error.get('message') or error.get('code')}"
    if status == "canceled" and data.get("cancellation_reason"):
        return f"canceled ({data['cancellation_reason'].replace('_', ' ')})"
    return words


def _session_status(data: dict[str, Any]) -> str:
    status, paid = data.get("status"), data.get("payment_status")
    if status == "complete":
        return "complete, paid" if paid in ("paid", "no_payment_required") else "complete, unpaid"
    if status == "open":
        return f"open, awaiting payment (expires {day(data.get('expires_at'))})".replace(
            " (expires )", ""
        )
    if status == "expired":
        return "expired unpaid"
    return status or "unknown"


_SUBSCRIPTION_WORDS = {
    "active": "active",
    "trialing": "in trial",
    "past_due": "past due: the latest renewal payment failed",
    "unpaid": "unpaid: renewals failed, invoices left open",
    "canceled": "canceled",
    "incomplete": "incomplete: first payment not made",
    "incomplete_expired": "expired before its first payment",
    "paused": "paused",
}


def subscription_period_end(data: dict[str, Any]) -> int | None:
    """When a subscription's paid period ends (a Unix time), from Stripe's object."""
    items = (data.get("items") or {}).get("data") or [{}]
    # Since API version 2025-03-31 the period lives on the items, not the subscription.
    return data.get("current_period_end") or items[0].get("current_period_end")


def _subscription_status(data: dict[str, Any]) -> str:
    status = data.get("status") or ""
    words = _SUBSCRIPTION_WORDS.get(status, status or "unknown")
    if status in ("active", "trialing") and data.get("cancel_at_period_end"):
        ends = subscription_period_end(data)
        words += f", cancels at period end ({day(ends)})" if ends else ", cancels at period end"
    return words


_INVOICE_WORDS = {
    "draft": "draft",
    "open": "open: awaiting payment",
    "paid": "paid",
    "uncollectible": "uncollectible",
    "void": "void",
}

_REFUND_WORDS = {
    "pending": "pending",
    "requires_action": "awaiting customer action",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}


def _refund_status(data: dict[str, Any]) -> str:
    words = _REFUND_WORDS.get(data.get("status") or "", data.get("status") or "unknown")
    if data.get("status") == "failed" and data.get("failure_reason"):
        words += f": {data['failure_reason'].replace('_', ' ')}"
    if data.get("reason"):
        words += f" (reason: {data['reason'].replace('_', ' ')})"
    return words


_DISPUTE_WORDS = {
    "warning_needs_response": "inquiry: response needed",
    "warning_under_review": "inquiry: under review",
    "warning_closed": "inquiry closed",
    "needs_response": "chargeback: response needed",
    "under_review": "chargeback: evidence under review",
    "won": "won",
    "lost": "lost",
    "prevented": "prevented",
}


def dispute_status(data: dict[str, Any]) -> str:
    status = data.get("status") or ""
    words = _DISPUTE_WORDS.get(status, status or "unknown")
    if status in ("needs_response", "warning_needs_response"):
        due = day((data.get("evidence_details") or {}).get("due_by"))
        words += f" by {due}" if due else ""
    return words


def status_text(object_type: str, data: dict[str, Any]) -> str:
    """The object's state as a support person would say it."""
    if data.get("deleted"):
        return "deleted in Stripe"
    if object_type == "charge":
        return _charge_status(data)
    if object_type == "payment_intent":
        return _payment_intent_status(data)
    if object_type == "checkout.session":
        return _session_status(data)
    if object_type == "subscription":
        return _subscription_status(data)
    if object_type == "invoice":
        status = data.get("status") or ""
        return _INVOICE_WORDS.get(status, status or "unknown")
    if object_type == "refund":
        return _refund_status(data)
    if object_type == "dispute":
        return dispute_status(data)
    if object_type in ("product", "price"):
        return "active" if data.get("active") else "archived"
    if object_type == "webhook_endpoint":
        return data.get("status") or "unknown"
    if object_type == "customer":
        return "delinquent (an invoice is unpaid)" if data.get("delinquent") else "active"
    return str(data.get("status") or "")


# --- One line per object -------------------------------------------------------------------


@dataclass(frozen=True)
class Described:
    object_type: str
    id: str
    status: str
    amount: str
    customer_id: str | None
    created: datetime | None
    livemode: bool | None
    metadata: dict[str, str]

    @property
    def dashboard_url(self) -> str:
        return dashboard_url(self.object_type, self.id, self.livemode)


def describe(object_type: str, data: dict[str, Any], stripe_id_: str = "") -> Described:
    customer = data.get("customer")
    if object_type == "customer":
        customer = data.get("id")
    return Described(
        object_type=object_type,
        id=data.get("id") or stripe_id_,
        status=status_text(object_type, data),
        amount=amount_text(object_type, data),
        customer_id=stripe_id(customer),
        created=timestamp(data.get("created")),
        livemode=data.get("livemode"),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
    )


def admin_url(model: str, key: Any, view: str = "change") -> str:
    """``admin_url("orders_order", "ord_1")``: an admin page by key, quoted as the admin
    unquotes it (an id like ``ord_23..`` would otherwise lose ``_23`` to ``#``)."""
    return reverse(f"admin:{model}_{view}", args=[quote(str(key))])


# --- Links between objects, as the data carries them ------------------------------------------

# Fields holding the id (or expanded copy) of another object of the same purchase.
PURCHASE_FIELDS = (
    "payment_intent",
    "latest_charge",
    "charge",
    "invoice",
    "latest_invoice",
    "subscription",
)


def related_ids(data: dict[str, Any]) -> list[str]:
    """Ids of the other objects of its purchase an object names (never its customer: a
    customer has other purchases). Covers the places API versions since 2025-03-31 moved them
    to: an invoice's subscription under ``parent``, its payment intents under ``payments``; and
    a charge's refunds when they come expanded."""
    found = [stripe_id(data.get(field)) for field in PURCHASE_FIELDS]
    parent = (data.get("parent") or {}).get("subscription_details") or {}
    found.append(stripe_id(parent.get("subscription")))
    for payment in ((data.get("payments") or {}).get("data")) or []:
        inner = payment.get("payment") or {}
        found += [stripe_id(inner.get("payment_intent")), stripe_id(inner.get("charge"))]
    found += [refund.get("id") for refund in ((data.get("refunds") or {}).get("data")) or []]
    return [value for value in dict.fromkeys(found) if value]


def order_ids(data: dict[str, Any]) -> list[str]:
    """Order ids the object names: its ``metadata.order_id``, a subscription invoice's copy
    of the subscription's metadata, a Checkout Session's client reference."""
    parent = (data.get("parent") or {}).get("subscription_details") or {}
    found = [
        (data.get("metadata") or {}).get("order_id"),
        (parent.get("metadata") or {}).get("order_id"),
        data.get("client_reference_id") if data.get("object") == "checkout.session" else None,
    ]
    return [str(value) for value in dict.fromkeys(found) if value]


def when(value: datetime | None) -> str:
    """One way to show a moment, in the console as on the customer's pages: the site's
    ``DATETIME_FORMAT`` (``27 Nov 2026, 13:40 UTC``, config/formats)."""
    if value is None:
        return "-"
    return date_format(timezone.localtime(value), "DATETIME_FORMAT")
