"""The hosted Checkout page (`session.url`): pay by card or US bank account, or cancel."""

from __future__ import annotations

import html
from typing import Any

from . import objects
from .api import (
    route,
    text,
)
from .calls import Response
from .catalog import format_amount
from .checkout import expire_overdue
from .checkout_complete import bank_choice, complete, unrequested
from .errors import StripeError

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
            unrequested(call),
            cs,
            str(call.params.get("card", "")),
            text(call.params.get("email")),
            **bank_choice(call.params),
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
