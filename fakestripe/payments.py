"""Cards, payment methods, payment intents, charges and refunds.

Test card numbers and `pm_card_*` ids behave as in Stripe's test mode. A confirmation
creates one charge; a decline leaves the intent in requires_payment_method with
`last_payment_error`, so the same intent can be confirmed again.
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
    integer,
    merge_metadata,
    register,
    render,
    require,
    route,
    text,
)
from .errors import StripeError, invalid
from .events import public
from .params import as_bool, as_int

# number -> (brand, decline reason or None)
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
}
TEST_TOKENS = {
    "tok_visa": "4242424242424242",
    "tok_mastercard": "5555555555554444",
    "tok_chargeDeclined": "4000000000000002",
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
    return {"brand": brand, "last4": number[-4:], "fingerprint": fingerprint, "decline": decline}


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


@route("POST", "/v1/payment_methods/{pm_id}/attach")
def payment_method_attach(emu, call, pm_id: str) -> dict[str, Any]:
    check_params(call.params, {"customer"})
    from .resources import CUSTOMER

    cus = fetch_live(emu, CUSTOMER, require(call.params, "customer"), param="customer")
    pm = resolve_payment_method(emu, pm_id, customer_id=cus["id"], param="id", call=call)
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


# -- payment intents ----------------------------------------------------------------------

CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = (*CONFIRMABLE, "requires_capture", "processing")


def unexpected_state(action: str, pi: dict[str, Any], allowed: tuple[str, ...]) -> StripeError:
    done = {"confirm": "confirmed", "cancel": "canceled", "update": "updated"}[action]
    return invalid(
        f"You cannot {action} this PaymentIntent because it has a status of {pi['status']}. "
        f"Only a PaymentIntent with one of the following statuses may be {done}: "
        f"{', '.join(allowed)}.",
        code="payment_intent_unexpected_state",
    )


def payment_intent_create(emu, call, params: dict[str, Any]) -> dict[str, Any]:
    from .resources import CUSTOMER

    amount = as_int(params, "amount", required=True)
    currency = str(require(params, "currency")).lower()
    if amount < 1 or (currency == "usd" and amount < 50):
        raise invalid("Amount must be at least $0.50 usd", param="amount", code="amount_too_small")
    if params.get("capture_method", "automatic") not in ("automatic", "automatic_async"):
        raise invalid("fakestripe supports capture_method automatic only.", param="capture_method")
    customer_id = text(params.get("customer"))
    if customer_id:
        fetch_live(emu, CUSTOMER, customer_id, param="customer")
    pi = objects.payment_intent(
        emu.new_id("pi"),
        emu.now(),
        amount=amount,
        currency=currency,
        customer_id=customer_id,
        description=text(params.get("description")),
        metadata=merge_metadata({}, params.get("metadata", {})),
        receipt_email=text(params.get("receipt_email")),
    )
    if params.get("automatic_payment_methods"):
        pi["automatic_payment_methods"] = {"allow_redirects": "always", "enabled": True}
    pm_id = params.get("payment_method")
    if pm_id:
        pi["payment_method"] = resolve_payment_method(emu, pm_id, call=call)["id"]
        pi["status"] = "requires_confirmation"
    emu.store.put(pi)
    emu.events.emit("payment_intent.created", pi, call=call)
    if as_bool(params, "confirm", False):
        confirm(emu, call, pi, raise_decline=True)
    return pi


def charge_intent(emu, call, pi: dict[str, Any], pm: dict[str, Any]) -> StripeError | None:
    """Charge `pm` for `pi`: create the charge, move the intent, emit Stripe's events.

    Returns the card error of a decline (the caller decides whether to raise it).
    """
    if pm["type"] != "card":
        raise invalid(
            f"fakestripe confirms `{pm['type']}` payment methods only through Checkout.",
            param="payment_method",
        )
    card = pm["_card"]
    failure = None
    if card["decline"]:
        code, message = DECLINES[card["decline"]]
        failure = {"code": code, "decline_code": card["decline"], "message": message}
    pi["payment_method"] = pm["id"]
    if pm["customer"] is None and pi["customer"]:
        pm["customer"] = pi["customer"]
        emu.store.save(pm)
    ch = objects.charge(
        emu.new_id("ch"), emu.now(), pi=pi, pm=pm, base_url=call.base_url, failure=failure
    )
    emu.store.put(ch)
    pi["latest_charge"] = ch["id"]
    if failure is None:
        record_balance(
            emu,
            ch["balance_transaction"],
            ch["amount"],
            ch["currency"],
            ch["id"],
            "charge",
            ch["description"],
        )
        pi.update(status="succeeded", amount_received=pi["amount"], last_payment_error=None)
        emu.store.save(pi)
        emu.events.emit("charge.succeeded", ch, call=call)
        emu.events.emit("payment_intent.succeeded", pi, call=call)
        return None
    error = StripeError(
        402,
        "card_error",
        failure["message"],
        code=failure["code"],
        decline_code=failure["decline_code"],
        charge=ch["id"],
    )
    last_error = {
        **error.body()["error"],
        "payment_method": public(pm),
    }
    pi.update(status="requires_payment_method", last_payment_error=last_error, payment_method=None)
    emu.store.save(pi)
    emu.events.emit("charge.failed", ch, call=call)
    emu.events.emit("payment_intent.payment_failed", pi, call=call)
    error.extra["payment_intent"] = public(pi)
    error.extra["payment_method"] = public(pm)
    return error


def confirm(
    emu, call, pi: dict[str, Any], *, pm_id: str | None = None, raise_decline: bool = True
) -> StripeError | None:
    if pi["status"] not in CONFIRMABLE:
        raise unexpected_state("confirm", pi, CONFIRMABLE)
    pm_id = pm_id or pi["payment_method"]
    if not pm_id:
        raise invalid(
            "You cannot confirm this PaymentIntent because it's missing a payment method. To "
            "confirm the PaymentIntent with cus_xxx, specify a payment method attached to this "
            "customer along with the customer ID.",
            code="payment_intent_unexpected_state",
        )
    pm = resolve_payment_method(emu, pm_id, call=call)
    error = charge_intent(emu, call, pi, pm)
    if error is not None and raise_decline:
        raise error
    return error


@route("POST", "/v1/payment_intents/{pi_id}/confirm")
def payment_intent_confirm(emu, call, pi_id: str) -> dict[str, Any]:
    check_params(
        call.params,
        {
            "payment_method",
            "return_url",
            "off_session",
            "receipt_email",
            "setup_future_usage",
            "payment_method_types",
        },
    )
    pi = fetch_live(emu, PAYMENT_INTENT, pi_id)
    if call.params.get("receipt_email"):
        pi["receipt_email"] = call.params["receipt_email"]
    confirm(emu, call, pi, pm_id=call.params.get("payment_method"))
    return render(emu, call, pi, expand_paths(call.params))


@route("POST", "/v1/payment_intents/{pi_id}/cancel")
def payment_intent_cancel(emu, call, pi_id: str) -> dict[str, Any]:
    check_params(call.params, {"cancellation_reason"})
    pi = fetch_live(emu, PAYMENT_INTENT, pi_id)
    if pi["status"] not in CANCELABLE:
        raise unexpected_state("cancel", pi, CANCELABLE)
    reason = call.params.get("cancellation_reason") or None
    allowed = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
    if reason and reason not in allowed:
        raise invalid(
            f"Invalid cancellation_reason: must be one of {', '.join(allowed)}",
            param="cancellation_reason",
        )
    pi.update(status="canceled", canceled_at=emu.now(), cancellation_reason=reason)
    emu.store.save(pi)
    emu.events.emit("payment_intent.canceled", pi, call=call)
    return render(emu, call, pi, expand_paths(call.params))


def payment_intent_update(emu, call, pi: dict[str, Any], params: dict[str, Any]) -> None:
    from .resources import CUSTOMER

    if pi["status"] in ("succeeded", "canceled") and {"amount", "currency"} & params.keys():
        raise unexpected_state("update", pi, CONFIRMABLE)
    if params.get("customer"):
        pi["customer"] = fetch_live(emu, CUSTOMER, params["customer"], param="customer")["id"]
    if params.get("payment_method"):
        pi["payment_method"] = resolve_payment_method(emu, params["payment_method"], call=call)[
            "id"
        ]
        if pi["status"] == "requires_payment_method":
            pi["status"] = "requires_confirmation"


PAYMENT_INTENT = register(
    Resource(
        object="payment_intent",
        path="payment_intents",
        prefix="pi",
        noun="payment_intent",
        indexed=("customer",),
        event="payment_intent",
        create=payment_intent_create,
        create_params=frozenset(
            {
                "amount",
                "currency",
                "customer",
                "description",
                "metadata",
                "payment_method",
                "confirm",
                "receipt_email",
                "capture_method",
                "payment_method_types",
                "automatic_payment_methods",
                "setup_future_usage",
                "statement_descriptor",
                "return_url",
                "off_session",
                "shipping",
                "statement_descriptor_suffix",
            }
        ),
        update_params={
            "amount": integer,
            "currency": str,
            "description": text,
            "receipt_email": text,
        },
        update_hook=payment_intent_update,
        hook_params=frozenset({"customer", "payment_method"}),
        filters={"customer": lambda o, v: o["customer"] == v},
        expandable=frozenset(
            {
                "customer",
                "latest_charge",
                "payment_method",
                "review",
                "application",
                "on_behalf_of",
                "transfer_data.destination",
            }
        ),
        search_fields={
            "amount": lambda o: o["amount"],
            "currency": lambda o: o["currency"],
            "customer": lambda o: o["customer"],
            "status": lambda o: o["status"],
            "created": lambda o: o["created"],
        },
    )
)

CHARGE = register(
    Resource(
        object="charge",
        path="charges",
        prefix="ch",
        noun="charge",
        indexed=("customer", "payment_intent"),
        event="charge",
        update_params={"description": text, "receipt_email": text},
        filters={
            "customer": lambda o, v: o["customer"] == v,
            "payment_intent": lambda o, v: o["payment_intent"] == v,
        },
        expandable=frozenset(
            {
                "customer",
                "payment_intent",
                "balance_transaction",
                "review",
                "application_fee",
                "on_behalf_of",
                "failure_balance_transaction",
                "source_transfer",
                "transfer",
                "application",
            }
        ),
        search_fields={
            "amount": lambda o: o["amount"],
            "currency": lambda o: o["currency"],
            "customer": lambda o: o["customer"],
            "status": lambda o: o["status"],
            "refunded": lambda o: o["refunded"],
            "disputed": lambda o: o["disputed"],
            "created": lambda o: o["created"],
            "payment_intent": lambda o: o["payment_intent"],
            "payment_method_details.card.last4": lambda o: (
                o["payment_method_details"].get("card") or {}
            ).get("last4"),
        },
    )
)


# -- refunds ----------------------------------------------------------------------------

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def _money(amount: int, currency: str) -> str:
    if currency in objects.ZERO_DECIMAL:
        return f"¥{amount}" if currency == "jpy" else f"{amount} {currency.upper()}"
    return f"${amount / 100:.2f}"


def refund_create(emu, call, params: dict[str, Any]) -> dict[str, Any]:
    charge_id, pi_id = text(params.get("charge")), text(params.get("payment_intent"))
    if not charge_id and not pi_id:
        raise invalid(
            "One of the following params should be provided for this request: "
            "payment_intent or charge.",
            code="parameter_missing",
        )
    if pi_id:
        pi = fetch_live(emu, PAYMENT_INTENT, pi_id, param="payment_intent")
        if pi["status"] != "succeeded" or not pi["latest_charge"]:
            raise invalid(
                f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                param="payment_intent",
                code="charge_not_refundable",
            )
        if charge_id and charge_id != pi["latest_charge"]:
            raise invalid("The charge and payment_intent do not match.", param="charge")
        charge_id = pi["latest_charge"]
    ch = fetch_live(emu, CHARGE, charge_id, param="charge")
    if ch["status"] != "succeeded":
        raise invalid(
            f"Charge {ch['id']} has no successful payment to refund.",
            param="charge",
            code="charge_not_refundable",
        )
    remaining = ch["amount"] - ch["amount_refunded"]
    if remaining <= 0:
        raise invalid(
            f"Charge {ch['id']} has already been refunded.", code="charge_already_refunded"
        )
    amount = as_int(params, "amount", default=remaining)
    if amount < 1:
        raise invalid("Invalid positive integer", param="amount")
    if amount > remaining:
        raise invalid(
            f"Refund amount ({_money(amount, ch['currency'])}) is greater than unrefunded "
            f"amount on charge ({_money(remaining, ch['currency'])})",
            param="amount",
        )
    reason = text(params.get("reason"))
    if reason and reason not in REFUND_REASONS:
        raise invalid(f"Invalid reason: must be one of {', '.join(REFUND_REASONS)}", param="reason")
    re = objects.refund(
        emu.new_id("re"),
        emu.now(),
        ch=ch,
        amount=amount,
        reason=reason,
        metadata=merge_metadata({}, params.get("metadata", {})),
    )
    emu.store.put(re)
    record_balance(
        emu,
        re["balance_transaction"],
        -amount,
        re["currency"],
        re["id"],
        "refund",
        "REFUND FOR CHARGE",
    )
    before = {
        "amount_refunded": ch["amount_refunded"],
        "refunded": ch["refunded"],
        "refunds": public(ch["refunds"]),
    }
    ch["amount_refunded"] += amount
    ch["refunded"] = ch["amount_refunded"] >= ch["amount"]
    ch["refunds"]["data"].insert(0, public(re))
    ch["refunds"]["data"] = ch["refunds"]["data"][:10]
    emu.store.save(ch)
    previous = {k: v for k, v in before.items() if ch[k] != v}
    emu.events.emit("charge.refunded", ch, call=call, previous=previous)
    emu.events.emit("refund.created", re, call=call)
    return re


def record_balance(
    emu, oid: str, amount: int, currency: str, source: str, kind: str, description: str | None
) -> None:
    txn = objects.balance_transaction(
        oid,
        emu.now(),
        amount=amount,
        currency=currency,
        source=source,
        kind=kind,
        description=description,
    )
    emu.store.put(txn)


BALANCE_TRANSACTION = register(
    Resource(
        object="balance_transaction",
        path="balance_transactions",
        prefix="txn",
        noun="balance transaction",
        updatable=False,
        filters={
            "source": lambda o, v: o["source"] == v,
            "type": lambda o, v: o["type"] == v,
            "currency": lambda o, v: o["currency"] == v,
        },
        expandable=frozenset({"source"}),
    )
)


REFUND = register(
    Resource(
        object="refund",
        path="refunds",
        prefix="re",
        noun="refund",
        indexed=("charge", "payment_intent"),
        event="refund",
        create=refund_create,
        create_params=frozenset(
            {
                "charge",
                "payment_intent",
                "amount",
                "reason",
                "metadata",
                "instructions_email",
                "refund_application_fee",
                "reverse_transfer",
            }
        ),
        filters={
            "charge": lambda o, v: o["charge"] == v,
            "payment_intent": lambda o, v: o["payment_intent"] == v,
        },
        expandable=frozenset(
            {
                "charge",
                "payment_intent",
                "balance_transaction",
                "failure_balance_transaction",
                "source_transfer_reversal",
                "transfer_reversal",
            }
        ),
    )
)
