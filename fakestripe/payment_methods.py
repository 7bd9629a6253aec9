"""Test cards and payment methods.

Test card numbers and `pm_card_*` ids behave as in Stripe's test mode (`pm_card_*` mints a
fresh payment method each time). Attaching to a customer is `customers.py`'s route.
"""

from __future__ import annotations

import hashlib
from typing import Any

from . import objects
from .api import (
    Resource,
    check_params,
    expand_paths,
    fetch_live,
    merge_metadata,
    register,
    render,
    route,
)
from .errors import StripeError, invalid

CARDS: dict[str, tuple[str, str | None]] = {
    "4242424242424242": ("visa", None),
    "4000056655665556": ("visa", None),
    "5555555555554444": ("mastercard", None),
    "2223003122003222": ("mastercard", None),
    "378282246310005": ("amex", None),
    "6011111111111117": ("discover", None),
    "4000000000000002": ("visa", "generic_decline"),
    "4000000000009995": ("visa", "insufficient_funds"),
    "4000000000009987": ("visa", "lost_card"),
    "4000000000009979": ("visa", "stolen_card"),
    "4000000000000069": ("visa", "expired_card"),
    "4000000000000127": ("visa", "incorrect_cvc"),
    "4000000000000119": ("visa", "processing_error"),
    "4000000000000259": ("visa", None),
    "4000000000002685": ("visa", None),
    "4000000000001976": ("visa", None),
    "4000000000005423": ("visa", None),
    "4000000000007726": ("visa", None),
    "4000000000005126": ("visa", None),
}
# Cards whose payments succeed and then do something later, from Stripe's testing docs:
# disputes (disputes.py) and asynchronous refunds (refunds.py).
BEHAVIOURS: dict[str, str] = {
    "4000000000000259": "dispute_fraudulent",
    "4000000000002685": "dispute_product_not_received",
    "4000000000001976": "dispute_inquiry",
    "4000000000005423": "early_fraud_warning",
    "4000000000007726": "refund_pending",
    "4000000000005126": "refund_fail",
}
TEST_PAYMENT_METHODS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_amex": "378282246310005",
    "pm_card_discover": "6011111111111117",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_createDispute": "4000000000000259",
    "pm_card_createDisputeProductNotReceived": "4000000000002685",
    "pm_card_createDisputeInquiry": "4000000000001976",
    "pm_card_createIssuerFraudRecord": "4000000000005423",
    "pm_card_pendingRefund": "4000000000007726",
    "pm_card_refundFail": "4000000000005126",
}
TEST_TOKENS = {
    "tok_visa": "4242424242424242",
    "tok_mastercard": "5555555555554444",
    "tok_chargeDeclined": "4000000000000002",
    "tok_createDispute": "4000000000000259",
    "tok_createDisputeProductNotReceived": "4000000000002685",
    "tok_createDisputeInquiry": "4000000000001976",
    "tok_createIssuerFraudRecord": "4000000000005423",
    "tok_pendingRefund": "4000000000007726",
    "tok_refundFail": "4000000000005126",
}
# decline reason -> (error code, message)
DECLINES = {
    "generic_decline": ("card_declined", "Your card was declined."),
    "insufficient_funds": ("card_declined", "Your card has insufficient funds."),
    "lost_card": ("card_declined", "Your card was declined."),
    "stolen_card": ("card_declined", "Your card was declined."),
    "expired_card": ("expired_card", "Your card has expired."),
    "incorrect_cvc": ("incorrect_cvc", "Your card's security code is incorrect."),
    "processing_error": (
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
}


def _luhn(number: str) -> bool:
    total = 0
    for i, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def card_from_number(raw: str) -> dict[str, Any]:
    """A card record for a test number; spaces and dashes are allowed, as on Checkout."""
    number = "".join(ch for ch in str(raw) if ch not in " -")
    if not number.isdigit() or not 13 <= len(number) <= 19 or not _luhn(number):
        raise StripeError(
            402,
            "card_error",
            "Your card number is incorrect.",
            code="incorrect_number",
            param="number",
        )
    brand, decline = CARDS.get(number, (None, None))
    if brand is None:
        brand = {"4": "visa", "5": "mastercard", "2": "mastercard", "3": "amex"}.get(
            number[0], "unknown"
        )
    fingerprint = hashlib.sha256(number.encode()).hexdigest()[:16]
    return {
        "brand": brand,
        "last4": number[-4:],
        "fingerprint": fingerprint,
        "decline": decline,
        "behaviour": BEHAVIOURS.get(number),
    }


def new_payment_method(emu, call, card: dict[str, Any], customer_id=None) -> dict[str, Any]:
    pm = objects.payment_method(emu.new_id("pm"), emu.now(), card, customer_id)
    emu.store.put(pm)
    if customer_id:
        emu.events.emit("payment_method.attached", pm, call=call)
    return pm


def resolve_payment_method(
    emu, pm_id: str, *, customer_id=None, param="payment_method", call=None
) -> dict[str, Any]:
    """A stored payment method; Stripe's `pm_card_*` test ids mint a fresh one each time."""
    if pm_id in TEST_PAYMENT_METHODS:
        return new_payment_method(
            emu, call, card_from_number(TEST_PAYMENT_METHODS[pm_id]), customer_id
        )
    pm = fetch_live(emu, PAYMENT_METHOD, pm_id, param=param)
    if customer_id and pm["customer"] is None:
        pm["customer"] = customer_id
        emu.store.save(pm)
        emu.events.emit("payment_method.attached", pm, call=call)
    return pm


# -- payment methods ----------------------------------------------------------------------


def payment_method_create(emu, call, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("type", "card") != "card":
        raise invalid("fakestripe only supports card payment methods.", param="type")
    card = params.get("card") or {}
    if not isinstance(card, dict):
        raise invalid("Invalid hash", param="card")
    number = card.get("number") or TEST_TOKENS.get(card.get("token", ""))
    if not number:
        raise invalid(
            "Missing required param: card[number].", param="card[number]", code="parameter_missing"
        )
    pm = new_payment_method(emu, call, card_from_number(number))
    if params.get("metadata"):
        pm["metadata"] = merge_metadata({}, params["metadata"])
    return pm


PAYMENT_METHOD = register(
    Resource(
        object="payment_method",
        path="payment_methods",
        prefix="pm",
        noun="PaymentMethod",
        event="payment_method",
        create=payment_method_create,
        create_params=frozenset({"type", "card", "metadata", "billing_details"}),
        filters={"customer": lambda o, v: o["customer"] == v, "type": lambda o, v: o["type"] == v},
        expandable=frozenset({"customer"}),
    )
)


@route("GET", "/v1/payment_methods/{pm_id}")
def payment_method_retrieve(emu, call, pm_id: str) -> dict[str, Any]:
    check_params(call.params, set())
    pm = resolve_payment_method(emu, pm_id, param="id", call=call)
    return render(emu, call, pm, expand_paths(call.params))


@route("POST", "/v1/payment_methods/{pm_id}/detach")
def payment_method_detach(emu, call, pm_id: str) -> dict[str, Any]:
    check_params(call.params, set())
    pm = fetch_live(emu, PAYMENT_METHOD, pm_id)
    if pm["customer"] is None:
        raise invalid(
            "The payment method you provided is not attached to a customer so "
            "detachment is impossible.",
            code="payment_method_unexpected_state",
        )
    pm["customer"] = None
    emu.store.save(pm)
    emu.events.emit("payment_method.detached", pm, call=call)
    return render(emu, call, pm)
