"""Builders for each Stripe object, with the top-level keys of Stripe's current API shape.

Shapes follow Stripe's published fixtures and stripe-python 15's typed classes at
2026-08-26.dahlia. Fields the emulator has no behaviour for keep Stripe's null/empty values.
Keys starting with "_" are emulator-private and never rendered.
"""

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


def customer(
    oid: str, now: int, *, email=None, name=None, description=None, phone=None, metadata=None
) -> dict[str, Any]:
    return {
        "id": oid,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": now,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": description,
        "discount": None,
        "email": email,
        "invoice_prefix": oid[-8:].upper().replace("_", "0"),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": metadata or {},
        "name": name,
        "next_invoice_sequence": 1,
        "phone": phone,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def product(
    oid: str,
    now: int,
    *,
    name: str,
    description=None,
    active=True,
    metadata=None,
    images=None,
    url=None,
    unit_label=None,
    statement_descriptor=None,
) -> dict:
    return {
        "id": oid,
        "object": "product",
        "active": active,
        "created": now,
        "default_price": None,
        "description": description,
        "images": images or [],
        "livemode": False,
        "marketing_features": [],
        "metadata": metadata or {},
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": statement_descriptor,
        "tax_code": None,
        "type": "service",
        "unit_label": unit_label,
        "updated": now,
        "url": url,
    }


def price(
    oid: str,
    now: int,
    *,
    product_id: str,
    currency: str,
    unit_amount: int,
    recurring: dict | None,
    active=True,
    metadata=None,
    nickname=None,
    lookup_key=None,
) -> dict[str, Any]:
    return {
        "id": oid,
        "object": "price",
        "active": active,
        "billing_scheme": "per_unit",
        "created": now,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": metadata or {},
        "nickname": nickname,
        "product": product_id,
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def plan_from_price(p: dict[str, Any]) -> dict[str, Any]:
    """The legacy `plan` Stripe still nests in subscription items, derived from the price."""
    recurring = p["recurring"] or {}
    return {
        "id": p["id"],
        "object": "plan",
        "active": p["active"],
        "amount": p["unit_amount"],
        "amount_decimal": p["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": p["created"],
        "currency": p["currency"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count", 1),
        "livemode": False,
        "metadata": p["metadata"],
        "meter": None,
        "nickname": p["nickname"],
        "product": p["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def checkout_line_item(oid: str, p: dict[str, Any], quantity: int, description: str) -> dict:
    amount = p["unit_amount"] * quantity
    return {
        "id": oid,
        "object": "item",
        "adjustable_quantity": None,
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": p["currency"],
        "description": description,
        "metadata": {},
        "price": p,
        "quantity": quantity,
    }


def checkout_session(
    oid: str,
    now: int,
    *,
    mode: str,
    currency: str,
    amount: int,
    expires_at: int,
    url: str,
    params: dict[str, Any],
) -> dict:
    return {
        "id": oid,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": amount,
        "amount_total": amount,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": now,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": params.get("customer"),
        "customer_account": None,
        "customer_creation": params.get("customer_creation")
        or (None if params.get("customer") or mode == "subscription" else "if_required"),
        "customer_details": None,
        "customer_email": params.get("customer_email"),
        "discounts": [],
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": None
        if mode == "subscription"
        else {"enabled": False, "invoice_data": None},
        "livemode": False,
        "locale": params.get("locale"),
        "managed_payments": {"enabled": False},
        "metadata": params.get("metadata") or {},
        "mode": mode,
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "always" if mode == "subscription" else None,
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": params.get("submit_type"),
        "subscription": None,
        "success_url": params.get("success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": url,
        "wallet_options": None,
    }


def card_details(card: dict[str, Any]) -> dict[str, Any]:
    return {
        "brand": card["brand"],
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": None,
            "cvc_check": "pass",
        },
        "country": "US",
        "display_brand": card["brand"],
        "exp_month": 12,
        "exp_year": 2034,
        "fingerprint": card["fingerprint"],
        "funding": "credit",
        "generated_from": None,
        "last4": card["last4"],
        "networks": {"available": [card["brand"]], "preferred": None},
        "regulated_status": "unregulated",
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
    }


def billing_details(email=None, name=None) -> dict[str, Any]:
    return {"address": address(), "email": email, "name": name, "phone": None, "tax_id": None}


def payment_method(oid: str, now: int, card: dict[str, Any], customer_id=None) -> dict:
    return {
        "id": oid,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": billing_details(),
        "card": card_details(card),
        "created": now,
        "customer": customer_id,
        "customer_account": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
        "_card": card,
    }


TEST_ROUTING_NUMBER = "110000000"


def us_bank_account_details(bank: dict[str, Any]) -> dict[str, Any]:
    """A payment method's `us_bank_account` hash (Stripe's test bank, a checking account)."""
    return {
        "account_holder_type": "individual",
        "account_type": "checking",
        "bank_name": "STRIPE TEST BANK",
        "financial_connections_account": None,
        "fingerprint": bank["fingerprint"],
        "last4": bank["last4"],
        "networks": {"preferred": "ach", "supported": ["ach"]},
        "routing_number": TEST_ROUTING_NUMBER,
        "status_details": None,
    }


def bank_payment_method(
    oid: str, now: int, bank: dict[str, Any], customer_id=None, *, email=None, name=None
) -> dict[str, Any]:
    """A `us_bank_account` payment method: Stripe sends the type's hash in place of `card`."""
    return {
        "id": oid,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": billing_details(email, name),
        "created": now,
        "customer": customer_id,
        "customer_account": None,
        "livemode": False,
        "metadata": {},
        "type": "us_bank_account",
        "us_bank_account": us_bank_account_details(bank),
        "_bank": bank,
    }


def payment_intent(
    oid: str,
    now: int,
    *,
    amount: int,
    currency: str,
    customer_id=None,
    description=None,
    metadata=None,
    payment_method_id=None,
    receipt_email=None,
    capture_method="automatic",
) -> dict:
    return {
        "id": oid,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": capture_method,
        "client_secret": f"{oid}_secret_{oid[-12:]}",
        "confirmation_method": "automatic",
        "created": now,
        "currency": currency,
        "customer": customer_id,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": metadata or {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": payment_method_id,
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }


def charge(
    oid: str,
    now: int,
    *,
    pi: dict[str, Any],
    pm: dict[str, Any],
    base_url: str,
    failure: dict[str, Any] | None,
    pending: bool = False,
) -> dict[str, Any]:
    """A charge: succeeded, failed (with `failure`), or pending (a bank debit in flight)."""
    succeeded = failure is None and not pending
    if pm["type"] == "us_bank_account":
        details = _bank_charge_details(pm, now)
    else:
        details = _card_charge_details(pm, pi["amount"], succeeded)
    approved = failure is None
    return {
        "id": oid,
        "object": "charge",
        "amount": pi["amount"],
        "amount_captured": pi["amount"] if approved else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": ("txn_" + oid[3:]) if succeeded else None,
        "billing_details": pm["billing_details"],
        "calculated_statement_descriptor": "FAKESTRIPE",
        "captured": approved,
        "created": now,
        "currency": pi["currency"],
        "customer": pi["customer"],
        "description": pi["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": failure["code"] if failure else None,
        "failure_message": failure["message"] if failure else None,
        "fraud_details": {},
        "livemode": False,
        # A charge copies its payment intent's metadata when it is created, and only then.
        "metadata": dict(pi["metadata"]),
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network" if approved else "declined_by_network",
            "reason": None if approved else failure.get("decline_code"),
            "risk_level": "normal",
            "risk_score": 20,
            "seller_message": "Payment complete."
            if approved
            else "The bank did not return any further details with this decline.",
            "type": "authorized" if approved else "issuer_declined",
        },
        "paid": succeeded,
        "payment_intent": pi["id"],
        "payment_method": pm["id"],
        "payment_method_details": details,
        "receipt_email": pi["receipt_email"],
        "receipt_number": None,
        "receipt_url": f"{base_url}/receipts/payment/{oid}" if approved else None,
        "refunded": False,
        "refunds": list_object([], f"/v1/charges/{oid}/refunds"),
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "pending" if pending else ("succeeded" if succeeded else "failed"),
        "transfer_data": None,
        "transfer_group": None,
    }


def _card_charge_details(pm: dict[str, Any], amount: int, succeeded: bool) -> dict[str, Any]:
    card = pm["_card"]
    return {
        "card": {
            "amount_authorized": amount if succeeded else None,
            "authorization_code": None,
            "brand": card["brand"],
            "checks": pm["card"]["checks"],
            "country": "US",
            "exp_month": 12,
            "exp_year": 2034,
            "extended_authorization": {"status": "disabled"},
            "fingerprint": card["fingerprint"],
            "funding": "credit",
            "incremental_authorization": {"status": "unavailable"},
            "installments": None,
            "last4": card["last4"],
            "mandate": None,
            "multicapture": {"status": "unavailable"},
            "network": card["brand"],
            "network_token": {"used": False},
            "network_transaction_id": None,
            "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
            "regulated_status": "unregulated",
            "three_d_secure": None,
            "transaction_link_id": None,
            "wallet": None,
        },
        "type": "card",
    }


def _bank_charge_details(pm: dict[str, Any], now: int) -> dict[str, Any]:
    account = pm["us_bank_account"]
    debit_on = dt.datetime.fromtimestamp(now, dt.UTC) + dt.timedelta(days=4)
    return {
        "type": "us_bank_account",
        "us_bank_account": {
            "account_holder_type": account["account_holder_type"],
            "account_type": account["account_type"],
            "bank_name": account["bank_name"],
            "expected_debit_date": debit_on.date().isoformat(),
            "fingerprint": account["fingerprint"],
            "last4": account["last4"],
            "mandate": None,
            "payment_reference": None,
            "routing_number": account["routing_number"],
        },
    }


def balance_transaction(
    oid: str, now: int, *, amount: int, currency: str, source: str, kind: str, description=None
) -> dict[str, Any]:
    """Stripe's test-mode fee: 2.9% + 30 minor units on charges (not on zero-decimal)."""
    fee = 0
    if kind == "charge":
        fee = round(amount * 0.029) + (0 if currency in ZERO_DECIMAL else 30)
    return {
        "id": oid,
        "object": "balance_transaction",
        "amount": amount,
        "available_on": now + 2 * 86400,
        "balance_type": "payments",
        "created": now,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": [
            {
                "amount": fee,
                "application": None,
                "currency": currency,
                "description": "Stripe processing fees",
                "type": "stripe_fee",
            }
        ]
        if fee
        else [],
        "net": amount - fee,
        "reporting_category": kind,
        "source": source,
        "status": "pending",
        "type": kind,
    }


def refund(
    oid: str, now: int, *, ch: dict[str, Any], amount: int, reason=None, metadata=None
) -> dict[str, Any]:
    return {
        "id": oid,
        "object": "refund",
        "amount": amount,
        "balance_transaction": "txn_" + oid[3:],
        "charge": ch["id"],
        "created": now,
        "currency": ch["currency"],
        "customer": ch["customer"],
        "customer_account": None,
        "destination_details": {
            "card": {
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
                "reference": None,
            },
            "type": "card",
        },
        "metadata": metadata or {},
        "payment_intent": ch["payment_intent"],
        "payment_method": ch["payment_method"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


def subscription_item(
    oid: str,
    now: int,
    *,
    sub_id: str,
    p: dict[str, Any],
    quantity: int,
    period: tuple[int, int],
    metadata=None,
) -> dict[str, Any]:
    return {
        "id": oid,
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": now,
        "current_period_end": period[1],
        "current_period_start": period[0],
        "discounts": [],
        "metadata": metadata or {},
        "plan": plan_from_price(p),
        "price": p,
        "quantity": quantity,
        "subscription": sub_id,
        "tax_rates": [],
    }


def subscription(
    oid: str,
    now: int,
    *,
    customer_id: str,
    currency: str,
    items: list,
    metadata=None,
    description=None,
    default_payment_method=None,
    cancel_at_period_end=False,
) -> dict[str, Any]:
    return {
        "id": oid,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": now,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": None, "type": "classic"},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": now,
        "currency": currency,
        "customer": customer_id,
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": default_payment_method,
        "default_source": None,
        "default_tax_rates": [],
        "description": description,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": None,
            "footer": None,
            "issuer": {"type": "self"},
        },
        "items": list_object(items, f"/v1/subscription_items?subscription={oid}"),
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": metadata or {},
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": now,
        "status": "incomplete",
        "test_clock": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }


def invoice_line(
    oid: str,
    *,
    invoice_id: str,
    sub: dict[str, Any],
    item: dict[str, Any],
    period: tuple[int, int],
    description: str,
) -> dict[str, Any]:
    p = item["price"]
    amount = p["unit_amount"] * item["quantity"]
    return {
        "id": oid,
        "object": "line_item",
        "amount": amount,
        "currency": p["currency"],
        "description": description,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "parent": {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": sub["id"],
                "subscription_item": item["id"],
            },
            "type": "subscription_item_details",
        },
        "period": {"end": period[1], "start": period[0]},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": p["id"], "product": p["product"]},
            "type": "price_details",
            "unit_amount_decimal": p["unit_amount_decimal"],
        },
        "quantity": item["quantity"],
        "quantity_decimal": str(item["quantity"]),
        "subscription": sub["id"],
        "subtotal": amount,
        "taxes": [],
    }


def invoice(
    oid: str,
    now: int,
    *,
    cus: dict[str, Any],
    sub: dict[str, Any],
    lines: list,
    period: tuple[int, int],
    billing_reason: str,
    number: str,
    base_url: str,
) -> dict[str, Any]:
    total = sum(line["amount"] for line in lines)
    return {
        "id": oid,
        "object": "invoice",
        "account_country": "US",
        "account_name": "fakestripe",
        "account_tax_ids": None,
        "amount_due": total,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": total,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": True,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "created": now,
        "currency": sub["currency"],
        "custom_fields": None,
        "customer": cus["id"],
        "customer_account": None,
        "customer_address": cus["address"],
        "customer_email": cus["email"],
        "customer_name": cus["name"],
        "customer_phone": cus["phone"],
        "customer_shipping": cus["shipping"],
        "customer_tax_exempt": cus["tax_exempt"],
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": list_object(lines, f"/v1/invoices/{oid}/lines"),
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": {
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(sub["metadata"]),
                "subscription": sub["id"],
            },
            "type": "subscription_details",
        },
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": period[1],
        "period_start": period[0],
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subscription": None,
        "subtotal": total,
        "subtotal_excluding_tax": total,
        "test_clock": None,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
        "_number": number,
        "_base_url": base_url,
    }


def invoice_payment(oid: str, now: int, *, inv: dict[str, Any], pi_id: str) -> dict[str, Any]:
    return {
        "id": oid,
        "object": "invoice_payment",
        "amount_paid": None,
        "amount_requested": inv["amount_due"],
        "created": now,
        "currency": inv["currency"],
        "invoice": inv["id"],
        "is_default": True,
        "livemode": False,
        "payment": {"payment_intent": pi_id, "type": "payment_intent"},
        "status": "open",
        "status_transitions": {"canceled_at": None, "paid_at": None},
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
