"""Checkout Sessions: the API resource, the hosted payment page and completion.

Completion follows Stripe: payment mode creates the payment intent and charge at payment
time (a declined card leaves the session open and the intent reusable); subscription mode
creates the customer, the subscription and its paid first invoice. Hosted payments are not
API requests, so their events carry `request.id` null.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

from . import bank, objects
from .api import (
    Resource,
    check_params,
    embedded_page,
    expand_paths,
    fetch_live,
    merge_metadata,
    register,
    render,
    route,
    text,
)
from .app import Response
from .billing import build_subscription, start
from .errors import StripeError, invalid
from .events import public
from .params import as_int, as_list
from .payments import card_from_number, charge_intent, new_payment_method
from .resources import CUSTOMER, PRICE, build_price, format_amount

MIN_EXPIRY, MAX_EXPIRY = 30 * 60, 24 * 3600
CREATE_PARAMS = frozenset(
    {
        "mode",
        "line_items",
        "customer",
        "customer_email",
        "client_reference_id",
        "metadata",
        "payment_intent_data",
        "subscription_data",
        "success_url",
        "cancel_url",
        "expires_at",
        "customer_creation",
        "locale",
        "submit_type",
        "payment_method_types",
        "ui_mode",
        "allow_promotion_codes",
        "billing_address_collection",
        "currency",
        "automatic_tax",
        "phone_number_collection",
        "payment_method_collection",
    }
)


def _line_items(emu, params: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    entries = as_list(params, "line_items")
    if not entries:
        raise invalid(
            f"You must provide at least one line item in `{mode}` mode.",
            param="line_items",
            code="parameter_missing",
        )
    items = []
    for i, entry in enumerate(entries):
        name = f"line_items[{i}]"
        if not isinstance(entry, dict):
            raise invalid("Invalid hash", param=name)
        if entry.get("price"):
            price = fetch_live(emu, PRICE, entry["price"], param=f"{name}[price]")
        elif isinstance(entry.get("price_data"), dict):
            # Inline prices are created inactive and silently, as Stripe does.
            price = build_price(emu, entry["price_data"], param=f"{name}[price_data]", active=False)
            emu.store.put(price)
        else:
            raise invalid(f"You must specify either `price` or `price_data` in {name}.", param=name)
        quantity = as_int(entry, "quantity")
        if quantity is None:
            raise invalid(
                f"Quantity is required. Add `quantity` to `{name}`", param=f"{name}[quantity]"
            )
        if quantity < 1:
            raise invalid(
                "This value must be greater than or equal to 1.", param=f"{name}[quantity]"
            )
        if mode == "payment" and price["type"] == "recurring":
            raise invalid(
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
                param=f"{name}[price]",
            )
        product = emu.store.get(price["product"]) or {}
        items.append(
            objects.checkout_line_item(
                emu.new_id("li"),
                public(price),
                quantity,
                product.get("name", ""),
            )
        )
    if mode == "subscription" and not any(i["price"]["type"] == "recurring" for i in items):
        raise invalid(
            "You must provide at least one recurring price in `subscription` mode "
            "when using prices.",
            param="line_items",
        )
    if len({item["currency"] for item in items}) > 1:
        raise invalid("All line items must have the same currency.", param="line_items")
    return items


def session_create(emu, call, params: dict[str, Any]) -> dict[str, Any]:
    mode = params.get("mode")
    if not mode:
        raise invalid("Missing required param: mode.", param="mode", code="parameter_missing")
    if mode not in ("payment", "subscription"):
        raise invalid(f"fakestripe does not support `{mode}` mode.", param="mode")
    if params.get("customer") and params.get("customer_email"):
        raise invalid(
            "You may only specify one of these parameters: customer, customer_email.",
            param="customer_email",
        )
    if mode == "subscription" and params.get("payment_intent_data"):
        raise invalid(
            "You can not pass `payment_intent_data` in `subscription` mode.",
            param="payment_intent_data",
        )
    if mode == "payment" and params.get("subscription_data"):
        raise invalid(
            "You can not pass `subscription_data` in `payment` mode.", param="subscription_data"
        )
    if params.get("customer"):
        fetch_live(emu, CUSTOMER, params["customer"], param="customer")
    now = emu.now()
    expires_at = as_int(params, "expires_at", default=now + MAX_EXPIRY)
    if expires_at < now + MIN_EXPIRY:
        raise invalid(
            "The `expires_at` timestamp must be at least 30 minutes from Checkout "
            "Session creation.",
            param="expires_at",
        )
    if expires_at > now + MAX_EXPIRY:
        raise invalid(
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            param="expires_at",
        )
    items = _line_items(emu, params, mode)
    pi_data = params.get("payment_intent_data") or {}
    sub_data = params.get("subscription_data") or {}
    fields = {
        **params,
        "metadata": merge_metadata({}, params.get("metadata", {})),
        "customer_email": text(params.get("customer_email")),
    }
    session_id = emu.new_id("cs_test")
    cs = objects.checkout_session(
        session_id,
        now,
        mode=mode,
        currency=items[0]["currency"],
        amount=sum(i["amount_total"] for i in items),
        expires_at=expires_at,
        url=f"{call.base_url}/checkout/pay/{session_id}",
        params=fields,
    )
    cs["_line_items"] = items
    cs["_payment_intent_data"] = {
        "metadata": merge_metadata(
            {}, pi_data.get("metadata", {}), "payment_intent_data[metadata]"
        ),
        "description": text(pi_data.get("description")),
        "receipt_email": text(pi_data.get("receipt_email")),
    }
    cs["_subscription_data"] = {
        "metadata": merge_metadata({}, sub_data.get("metadata", {}), "subscription_data[metadata]"),
        "description": text(sub_data.get("description")),
    }
    emu.store.put(cs)
    open_sessions(emu)[cs["id"]] = expires_at
    return cs


def open_sessions(emu) -> dict[str, int]:
    """Open sessions by expiry, so the expiry sweep costs O(open), not O(all sessions)."""
    table = getattr(emu, "_open_sessions", None)
    if table is None:
        table = emu._open_sessions = {
            oid: emu.store.objects[oid]["expires_at"]
            for oid in emu.store.index("checkout.session").newest_first()
            if emu.store.objects[oid]["status"] == "open"
        }
    return table


def _session_items(emu, cs: dict[str, Any]) -> dict[str, Any]:
    items = cs.get("_line_items", [])
    return objects.list_object(
        public(items[:10]), f"/v1/checkout/sessions/{cs['id']}/line_items", len(items) > 10
    )


SESSION = register(
    Resource(
        object="checkout.session",
        path="checkout/sessions",
        prefix="cs",
        noun="checkout.session",
        indexed=("payment_intent", "subscription", "customer"),
        create=session_create,
        create_params=CREATE_PARAMS,
        filters={
            "payment_intent": lambda o, v: o["payment_intent"] == v,
            "subscription": lambda o, v: o["subscription"] == v,
            "customer": lambda o, v: o["customer"] == v,
            "status": lambda o, v: o["status"] == v,
            "payment_link": lambda o, v: o["payment_link"] == v,
            "customer_details": lambda o, v: (
                (o["customer_details"] or {}).get("email") == (v or {}).get("email")
            ),
        },
        expandable=frozenset(
            {
                "customer",
                "invoice",
                "payment_intent",
                "subscription",
                "payment_link",
                "setup_intent",
            }
        ),
        includable={"line_items": _session_items},
    )
)


@route("GET", "/v1/checkout/sessions/{cs_id}/line_items")
def session_line_items(emu, call, cs_id: str) -> dict[str, Any]:
    check_params(call.params, {"limit", "starting_after", "ending_before"})
    cs = fetch_live(emu, SESSION, cs_id)
    page = embedded_page(call, cs["_line_items"], f"/v1/checkout/sessions/{cs_id}/line_items")
    paths = expand_paths(call.params)
    return render(emu, call, page, paths) if paths else page


@route("POST", "/v1/checkout/sessions/{cs_id}/expire")
def session_expire(emu, call, cs_id: str) -> dict[str, Any]:
    check_params(call.params, set())
    cs = fetch_live(emu, SESSION, cs_id)
    if cs["status"] != "open":
        raise invalid(
            f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
            f'Session has a status of "{cs["status"]}".',
        )
    expire(emu, call, cs)
    return render(emu, call, cs, expand_paths(call.params))


def expire(emu, call, cs: dict[str, Any]) -> None:
    open_sessions(emu).pop(cs["id"], None)
    cs.update(status="expired", url=None)
    emu.store.save(cs)
    emu.events.emit("checkout.session.expired", cs, call=call)


def expire_overdue(emu) -> None:
    """Expire open sessions past `expires_at` (Stripe does it in the background too)."""
    now = emu.now()
    with emu.store.lock:
        table = open_sessions(emu)
        for cs_id in [oid for oid, expires_at in table.items() if expires_at <= now]:
            cs = emu.store.get(cs_id)
            if cs is not None and cs["status"] == "open":
                expire(emu, None, cs)
            table.pop(cs_id, None)


# -- completion ---------------------------------------------------------------------------


def _customer_details(cs: dict[str, Any], cus: dict[str, Any] | None, email: str | None):
    return {
        "address": objects.address(),
        "business_name": None,
        "email": email or cs["customer_email"] or (cus or {}).get("email"),
        "individual_name": None,
        "name": (cus or {}).get("name"),
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }


def _ensure_customer(emu, call, cs: dict[str, Any], email: str | None) -> dict[str, Any]:
    if cs["customer"]:
        return emu.store.get(cs["customer"])
    from .resources import customer_create

    return customer_create(emu, call, {"email": email or cs["customer_email"]})


def complete(
    emu,
    call,
    cs: dict[str, Any],
    number: str,
    email: str | None = None,
    *,
    bank_account: str | None = None,
    settle_after: float = bank.DEFAULT_SETTLE_AFTER,
):
    """Pay the session with a test card, or by ACH Direct Debit when `bank_account` is given.

    Returns None, or the card error of a decline. A bank debit completes the session unpaid
    (payment_status `unpaid`, the intent `processing`); `_session_settled` finishes it.
    """
    if cs["status"] != "open":
        raise invalid(f"This Checkout Session is {cs['status']} and can no longer be paid.")
    if bank_account is not None:
        card, account = None, bank.bank_from_number(bank_account)
        bank.check_currency(cs["currency"])
    else:
        card, account = card_from_number(number), None
    if cs["mode"] == "payment":
        cus = None
        if cs["customer"] or cs["customer_creation"] == "always":
            cus = _ensure_customer(emu, call, cs, email)
        if account is not None:
            pm = _bank_payment_method(emu, call, cs, account, cus, email)
        else:
            pm = new_payment_method(emu, call, card)
        pi = emu.store.get(cs["payment_intent"]) if cs["payment_intent"] else None
        if pi is None:
            data = cs["_payment_intent_data"]
            pi = objects.payment_intent(
                emu.new_id("pi"),
                emu.now(),
                amount=cs["amount_total"],
                currency=cs["currency"],
                customer_id=cus["id"] if cus else None,
                description=data["description"],
                metadata=dict(data["metadata"]),
                receipt_email=data["receipt_email"],
            )
            emu.store.put(pi)
            cs["payment_intent"] = pi["id"]
            emu.store.save(cs)
            emu.events.emit("payment_intent.created", pi, call=call)
        if account is not None:
            pi["_checkout_session"] = cs["id"]
            bank.process(emu, call, pi, pm, settle_after=settle_after)
        else:
            error = charge_intent(emu, call, pi, pm)
            if error is not None:
                return error
        cs["customer"] = cus["id"] if cus else None
    else:
        if card is not None and card["decline"]:
            # Checkout confirms the card before it creates the subscription.
            return _decline_without_charge(card)
        cus = _ensure_customer(emu, call, cs, email)
        if account is not None:
            pm = _bank_payment_method(emu, call, cs, account, cus, email)
        else:
            pm = new_payment_method(emu, call, card, cus["id"])
        data = cs["_subscription_data"]
        lines = [(emu.store.get(i["price"]["id"]), i["quantity"]) for i in cs["_line_items"]]
        sub = build_subscription(
            emu,
            cus=cus,
            lines=lines,
            metadata=dict(data["metadata"]),
            description=data["description"],
        )
        sub["default_payment_method"] = pm["id"]
        sub["_checkout_session"] = cs["id"]
        error = start(emu, call, sub, pm, settle_after=settle_after)
        if error is not None:
            return error
        cs.update(customer=cus["id"], subscription=sub["id"], invoice=sub["latest_invoice"])
    open_sessions(emu).pop(cs["id"], None)
    # A finished session has no payment page any more: Stripe nulls its url.
    cs.update(
        status="complete",
        payment_status="unpaid" if account is not None else "paid",
        customer_details=_customer_details(cs, cus, email),
        url=None,
    )
    emu.store.save(cs)
    emu.events.emit("checkout.session.completed", cs, call=call)
    return None


def _bank_payment_method(emu, call, cs, account, cus, email) -> dict[str, Any]:
    """Checkout collects the account holder's name and email with the bank details."""
    name = (cus or {}).get("name") or "Jenny Rosen"
    email = email or cs["customer_email"] or (cus or {}).get("email")
    return bank.new_payment_method(
        emu, call, account, cus["id"] if cus else None, email=email, name=name
    )


@bank.on_settled
def _session_settled(emu, pi: dict[str, Any], succeeded: bool) -> None:
    """A bank debit behind a completed session has settled: tell the merchant, as Stripe does."""
    cs_id = pi.get("_checkout_session")
    if cs_id is None and pi.get("_invoice"):
        inv = emu.store.get(pi["_invoice"]) or {}
        sub_id = ((inv.get("parent") or {}).get("subscription_details") or {}).get("subscription")
        cs_id = (emu.store.get(sub_id or "") or {}).get("_checkout_session")
        if inv.get("billing_reason") != "subscription_create":
            cs_id = None  # a renewal's debit is the invoice's business, not the session's
    cs = emu.store.get(cs_id or "")
    if cs is None or cs["status"] != "complete" or cs["payment_status"] != "unpaid":
        return
    if succeeded:
        cs["payment_status"] = "paid"
        emu.store.save(cs)
        emu.events.emit("checkout.session.async_payment_succeeded", cs, call=None)
    else:
        emu.events.emit("checkout.session.async_payment_failed", cs, call=None)


def _decline_without_charge(card: dict[str, Any]) -> StripeError:
    from .payments import DECLINES

    code, message = DECLINES[card["decline"]]
    return StripeError(402, "card_error", message, code=code, decline_code=card["decline"])


def _unrequested(call):
    """Hosted payments are not API requests: their events have a null request id."""
    return dataclasses.replace(call, request_id=None, idempotency_key=None)


@route("POST", "/_fake/checkout/sessions/{cs_id}/complete")
def fake_complete(emu, call, cs_id: str):
    cs = fetch_live(emu, SESSION, cs_id)
    expire_overdue(emu)
    error = complete(
        emu,
        _unrequested(call),
        cs,
        str(call.params.get("card") or "4242424242424242"),
        text(call.params.get("email")),
        **_bank_choice(call.params),
    )
    if error is not None:
        raise error
    return render(emu, call, cs, expand_paths(call.params))


def _bank_choice(params: dict[str, Any]) -> dict[str, Any]:
    """`payment_method=us_bank_account` with `bank_account` (and `settle_after`) picks ACH."""
    method = params.get("payment_method") or "card"
    if method == "card":
        return {}
    if method != "us_bank_account":
        raise invalid("payment_method must be `card` or `us_bank_account`.", param="payment_method")
    return {
        "bank_account": str(params.get("bank_account") or ""),
        "settle_after": bank.settle_after_param(params),
    }


# -- hosted page --------------------------------------------------------------------------

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Pay - fakestripe checkout</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}
table{{width:100%}}td.amount{{text-align:right}}.error{{color:#b00020}}</style></head>
<body><h1>fakestripe checkout</h1>
<p class="mode">Mode: {mode}</p>
{body}
</body></html>"""


def _payment_state(emu, cs: dict[str, Any]) -> str:
    if cs["payment_status"] == "paid":
        return "This Checkout Session is already paid."
    pi = emu.store.get(cs["payment_intent"] or "") or {}
    if pi.get("status") == "requires_payment_method":
        return "The bank debit for this Checkout Session failed."
    return "Your payment is processing: the bank debit takes a few days to confirm (here, seconds)."


def _render_page(emu, cs: dict[str, Any], error: str | None = None, status: int = 200) -> Response:
    rows = "".join(
        f'<tr class="line-item"><td>{html.escape(i["description"])} x {i["quantity"]}</td>'
        f'<td class="amount">{format_amount(i["amount_total"], i["currency"])}</td></tr>'
        for i in cs.get("_line_items", [])
    )
    total = format_amount(cs["amount_total"] or 0, cs["currency"] or "usd")
    summary = f'<table>{rows}</table><p>Total: <strong id="total">{total}</strong></p>'
    if cs["status"] == "open":
        message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
        cancel = (
            f'<p><a id="cancel" href="{html.escape(cs["cancel_url"])}">Cancel and go back</a></p>'
            if cs["cancel_url"]
            else ""
        )
        email = (
            ""
            if cs["customer_email"] or cs["customer"]
            else (
                '<p><label>Email <input name="email" type="email" '
                'value="customer@example.com"></label></p>'
            )
        )
        body = (
            f"{summary}{message}<form method=post>{email}"
            "<fieldset><legend>Pay with</legend>"
            '<p><label><input type="radio" name="payment_method" value="card" id="method-card" '
            "checked> Card</label> "
            '<label><input type="radio" name="payment_method" value="us_bank_account" '
            'id="method-bank"> US bank account (ACH Direct Debit)</label></p>'
            '<p><label>Card number <input name="card" id="card" autocomplete="cc-number" '
            'inputmode="numeric" placeholder="4242 4242 4242 4242"></label></p>'
            '<p><label>Bank account number <input name="bank_account" id="bank_account" '
            'inputmode="numeric" placeholder="000123456789"></label> '
            f"(routing number {objects.TEST_ROUTING_NUMBER})</p></fieldset>"
            f'<button type="submit" id="pay">Pay {total}</button></form>{cancel}'
        )
    elif cs["status"] == "complete":
        body = f'{summary}<p id="status">{html.escape(_payment_state(emu, cs))}</p>'
    else:
        body = f'{summary}<p id="status">This Checkout Session has expired.</p>'
    page = PAGE.format(mode=html.escape(cs["mode"]), body=body)
    return Response(status, page.encode(), {"Content-Type": "text/html; charset=utf-8"})


def _page_session(emu, cs_id: str) -> dict[str, Any] | None:
    cs = emu.store.get(cs_id)
    return cs if cs is not None and cs.get("object") == "checkout.session" else None


def _not_found() -> Response:
    return Response(
        404,
        b"<!doctype html><p>No such Checkout Session.</p>",
        {"Content-Type": "text/html; charset=utf-8"},
    )


@route("GET", "/checkout/pay/{cs_id}")
def page_show(emu, call, cs_id: str) -> Response:
    expire_overdue(emu)
    cs = _page_session(emu, cs_id)
    return _render_page(emu, cs) if cs else _not_found()


@route("POST", "/checkout/pay/{cs_id}")
def page_pay(emu, call, cs_id: str) -> Response:
    expire_overdue(emu)
    cs = _page_session(emu, cs_id)
    if cs is None:
        return _not_found()
    if cs["status"] != "open":
        return _render_page(emu, cs)
    try:
        error = complete(
            emu,
            _unrequested(call),
            cs,
            str(call.params.get("card", "")),
            text(call.params.get("email")),
            **_bank_choice(call.params),
        )
    except StripeError as exc:
        error = exc
    if error is not None:
        return _render_page(emu, cs, error.message, status=402)
    target = cs["success_url"] or f"{call.base_url}/checkout/done/{cs['id']}"
    target = target.replace("{CHECKOUT_SESSION_ID}", cs["id"])
    return Response(303, b"", {"Location": target, "Content-Type": "text/html"})


@route("GET", "/checkout/done/{cs_id}")
def page_done(emu, call, cs_id: str) -> Response:
    cs = _page_session(emu, cs_id)
    message = "Payment complete."
    if cs is not None and cs["status"] == "complete" and cs["payment_status"] != "paid":
        message = _payment_state(emu, cs)
    return Response(
        200,
        f"<!doctype html><p>{html.escape(message)}</p>".encode(),
        {"Content-Type": "text/html; charset=utf-8"},
    )
