"""Payment methods (card, us_bank_account), payment intents, charges, balance
transactions and refunds."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .common import ZERO_DECIMAL, billing_details, list_object


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
    oid: str,
    now: int,
    *,
    amount: int,
    currency: str,
    source: str,
    kind: str,
    description=None,
    fee: int | None = None,
    fee_description: str = "Stripe processing fees",
    reporting_category: str | None = None,
) -> dict[str, Any]:
    """Stripe's test-mode fee: 2.9% + 30 minor units on charges (not on zero-decimal);
    other kinds carry the `fee` given (a dispute's), or none."""
    if fee is None:
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
                "description": fee_description,
                "type": "stripe_fee",
            }
        ]
        if fee
        else [],
        "net": amount - fee,
        "reporting_category": reporting_category or kind,
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
