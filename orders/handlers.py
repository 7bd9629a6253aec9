"""Webhook handlers for orders, registered in the billing pipeline.

Each gets the object as Stripe has it now (re-fetched with the expansions registered here)
and finds its order through the link metadata; objects without a link are recorded in the
event's outcome, not treated as errors.
"""

from __future__ import annotations

from billing.consts import EventType as E
from billing.display import stripe_id
from billing.webhooks.registry import EventContext, register
from orders import services
from orders.services import disputes, refunds

# One fetch of a completed session brings what fulfilment links: the payment intent with its
# charge (receipt), and the subscription. Expanding here is what keeps dj-stripe from
# retrieving each of them one by one while it mirrors the session.
SESSION_EXPAND = ["payment_intent.payment_method", "subscription"]


def _source(ctx: EventContext) -> dict[str, str]:
    return {"source": f"webhook {ctx.event.type}", "event_id": ctx.event.id}


# One handler for every session event: what happens is decided from the session as Stripe has
# it now (status, payment status, the payment intent's status), never from the event's type;
# an "expired" event about a session that was paid meanwhile pays the order.
@register(
    E.CHECKOUT_SESSION_COMPLETED,
    E.CHECKOUT_SESSION_ASYNC_PAYMENT_SUCCEEDED,
    E.CHECKOUT_SESSION_ASYNC_PAYMENT_FAILED,
    E.CHECKOUT_SESSION_EXPIRED,
    expand=SESSION_EXPAND,
)
def session_changed(ctx: EventContext) -> str | None:
    outcome = services.order_session_apply(session=ctx.obj, **_source(ctx))
    return _adopt(ctx, outcome, stripe_id(ctx.obj.get("payment_intent")))


def _adopt(ctx: EventContext, outcome: str | None, *intent_ids: str | None) -> str | None:
    """Once a payment is recorded: the refunds and disputes whose events came before it (a
    dispute card disputes before Checkout completes) recorded on its order now."""
    adopted = []
    for intent_id in filter(None, intent_ids):
        adopted += disputes.disputes_adopt(payment_intent_id=intent_id, **_source(ctx))
        adopted += refunds.refunds_adopt(payment_intent_id=intent_id, **_source(ctx))
    return "; ".join(filter(None, [outcome, *adopted])) or None


def _invoice_intents(invoice: dict) -> list[str | None]:
    paid = [item.get("payment") or {} for item in (invoice.get("payments") or {}).get("data") or []]
    return [stripe_id(invoice.get("payment_intent"))] + [
        stripe_id(p.get("payment_intent")) for p in paid
    ]


# Expansions are per object type, so these serve every charge fetch (charge.succeeded too):
# dj-stripe would otherwise retrieve the payment intent, its payment method and the balance
# transaction one by one while mirroring the charge.
# A charge's refunds come with it (Stripe includes them only when asked, since 2022-11-15), so
# ``charge.refunded`` records each from the mirror the same fetch wrote.
CHARGE_EXPAND = ["payment_intent.payment_method", "balance_transaction", "refunds"]


@register(E.CHARGE_REFUNDED, expand=CHARGE_EXPAND)
def charge_refunded(ctx: EventContext) -> str | None:
    return services.order_refund_sync(charge=ctx.obj, **_source(ctx))


# A card declined on Checkout: the failed charge (it stays failed, whatever happens next) is
# noted in the order's history; the order stays payable.
@register(E.CHARGE_FAILED, expand=CHARGE_EXPAND)
def charge_failed(ctx: EventContext) -> str | None:
    return services.order_charge_declined(charge=ctx.obj, **_source(ctx))


# It reads what the update changed (a snapshot's previous_attributes, a thin event's changes).
@register(E.SUBSCRIPTION_UPDATED, E.SUBSCRIPTION_DELETED, reads_event=True)
def subscription_changed(ctx: EventContext) -> str | None:
    changed = ctx.previous_attributes
    return services.order_subscription_sync(subscription=ctx.obj, changed=changed, **_source(ctx))


@register(E.INVOICE_PAID)
def invoice_paid(ctx: EventContext) -> str | None:
    outcome = services.order_invoice_paid(invoice=ctx.obj, **_source(ctx))
    return _adopt(ctx, outcome, *_invoice_intents(ctx.obj))


# A payment intent made outside Checkout and invoices that names an order: recorded and
# flagged for support (the order's own intents are recorded with their session or invoice).
@register(E.PAYMENT_INTENT_SUCCEEDED)
def payment_intent_succeeded(ctx: EventContext) -> str | None:
    outcome = services.order_intent_record(intent=ctx.obj, **_source(ctx))
    return _adopt(ctx, outcome, ctx.obj.get("id"))


# Refunds, whoever made them (the console, Stripe's Dashboard, the API): each recorded as the
# mirror has it now, so refund.updated after refund.failed (or before charge.refunded) changes
# nothing the later fetch did not already say.
@register(
    E.REFUND_CREATED,
    E.REFUND_UPDATED,
    E.REFUND_FAILED,
    expand=["balance_transaction", "failure_balance_transaction"],
)
def refund_changed(ctx: EventContext) -> str | None:
    return services.refund_record(refund=ctx.obj, **_source(ctx))


# Disputes: one handler for every step, decided from the dispute as Stripe has it now.
@register(
    E.CHARGE_DISPUTE_CREATED,
    E.CHARGE_DISPUTE_UPDATED,
    E.CHARGE_DISPUTE_CLOSED,
    E.CHARGE_DISPUTE_FUNDS_WITHDRAWN,
    E.CHARGE_DISPUTE_FUNDS_REINSTATED,
)
def dispute_changed(ctx: EventContext) -> str | None:
    return services.dispute_record(dispute=ctx.obj, **_source(ctx))
