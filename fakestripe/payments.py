"""Payment intents and charges.

A confirmation creates one charge; a decline leaves the intent in requires_payment_method with
`last_payment_error`, so the same intent can be confirmed again.
"""

from __future__ import annotations

from collections.abc import Callable
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
from .balance import record_balance
from .customers import CUSTOMER
from .errors import StripeError, invalid
from .events import public
from .params import as_bool, as_int
from .payment_methods import DECLINES, resolve_payment_method

CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = (*CONFIRMABLE, "requires_capture", "processing")

# (emu, call, charge, payment method) -> None, run after `charge.succeeded` and before
# `payment_intent.succeeded` of a card payment: what the card does next (a dispute test card
# disputes it there, as in Stripe's event order). disputes.py registers one.
CHARGE_SUCCEEDED_HOOKS: list[Callable[[Any, Any, dict[str, Any], dict[str, Any]], None]] = []


def on_charge_succeeded(hook: Callable) -> Callable:
    CHARGE_SUCCEEDED_HOOKS.append(hook)
    return hook


def unexpected_state(action: str, pi: dict[str, Any], allowed: tuple[str, ...]) -> StripeError:
    done = {"confirm": "confirmed", "cancel": "canceled", "update": "updated"}[action]
    return invalid(
        f"You cannot {action} this PaymentIntent because it has a status of {pi['status']}. "
        f"Only a PaymentIntent with one of the following statuses may be {done}: "
        f"{', '.join(allowed)}.",
        code="payment_intent_unexpected_state",
    )


def payment_intent_create(emu, call, params: dict[str, Any]) -> dict[str, Any]:
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
        for hook in CHARGE_SUCCEEDED_HOOKS:
            hook(emu, call, ch, pm)
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
