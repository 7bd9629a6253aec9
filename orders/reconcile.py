"""Reconcile the shop's orders and Stripe's objects (``manage.py stripe_reconcile``).

Walks Stripe's lists (pages of 100, with the related objects expanded in the same call) and
compares them with the orders they link to through their metadata keys. Four kinds of
finding:

- ``order_mismatch``: an order whose Stripe objects are missing or disagree with it (amount,
  currency, status, refunded amount; a refund or a dispute of its payment that its records
  lack or hold in another state);
- ``dangling_link``: a Stripe object whose link keys point at no order or user (or at an order
  of another user);
- ``unfulfilled_payment``: a paid session or invoice whose order is not paid or fulfilled;
- ``missing_link_keys``: an object that lacks the link keys its session, subscription or
  payment intent has (Stripe does not copy metadata onto related objects);
- ``unrecorded_payment``: a succeeded payment intent that names an order but is none of its
  recorded payments (made by hand, outside its session and subscription; its event missed,
  or it arrived while the order's own session was still open);
- ``duplicate_subscription``: a customer with several live subscriptions to one plan (from the
  mirror, one grouped query: ``orders.services.plans.subscriptions_duplicated``); needs a person.

With ``fix``, what the product's own services can repair is repaired, each from the object
as Stripe has it now: a paid order is fulfilled (``order_session_apply`` / ``order_invoice_paid``
from the re-fetched session or invoice), refunds are brought in line (``order_refund_sync``
from the re-fetched charge; a refund's or a dispute's record from the re-fetched refund or
dispute), and missing link keys are copied through the API, the mirror then
written from Stripe's answer, and an unrecorded payment intent is recorded (flagged for
support, never applied: ``order_intent_record``). The rest needs a person and is reported.
No transaction is held across a Stripe call: pages are read, then fixes run one by one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from billing import metadata, stripe_api
from billing.consts import IntentStatus, InvoiceStatus, SessionPaymentStatus, SessionStatus
from billing.models import ReconcileReport
from orders import links, reconcile_fixes
from orders.models import PAID_STATES, Order
from orders.reconcile_money import Finding, MoneyChecks
from orders.services import (
    intent_unrecorded,
)

logger = logging.getLogger(__name__)

KINDS = (
    "order_mismatch",
    "dangling_link",
    "unfulfilled_payment",
    "missing_link_keys",
    "unrecorded_payment",
    "duplicate_subscription",
)


@dataclass(frozen=True)
class _Repair:
    finding: Finding
    action: Callable[[], str]


def _missing(keys: dict[str, str], obj: dict[str, Any]) -> dict[str, str]:
    """The link keys ``obj`` lacks (or holds other values for) compared with ``keys``."""
    have = metadata.link_keys(obj)
    return {k: v for k, v in keys.items() if have.get(k) != v}


class Reconciler(MoneyChecks):
    """One reconcile run: the walks, the findings, the repairs."""

    def __init__(self, *, fix: bool, since: datetime | None):
        self.fix = fix
        self.since = since
        self.findings: list[Finding] = []
        self.seen_orders: set[int] = set()

    # -- helpers

    def _params(self, **params: Any) -> dict[str, Any]:
        if self.since is not None:
            params["created"] = {"gte": int(self.since.timestamp())}
        return params

    def _found(self, finding: Finding, repair: Callable[[], str] | None = None):
        self.findings.append(finding)
        return _Repair(finding, repair) if repair is not None else None

    def _resolve(self, obj: dict[str, Any]) -> links.Link:
        link = links.link_resolve(keys=metadata.link_keys(obj))
        if link.status == "unlinked":
            self._found(
                Finding(
                    kind="dangling_link",
                    object_type=obj["object"],
                    stripe_id=obj["id"],
                    detail=link.problem,
                    order=metadata.link_keys(obj).get("order_id", ""),
                )
            )
        return link

    def _walk(self, object_type: str, params: dict[str, Any], check) -> None:
        pages = stripe_api.list_pages(object_type=object_type, params=self._params(**params))
        for page in (listed["data"] for listed in pages):
            # Reads under one short transaction (orders are looked up locked, as the
            # handlers do); repairs after it, each calling Stripe with nothing held.
            with transaction.atomic():
                repairs = [r for obj in page for r in check(obj) if r is not None]
            if self.fix:
                for repair in repairs:
                    repair.finding.fixed = _attempt(repair.action)

    # -- the walks

    def run(self) -> list[Finding]:
        self._walk("customer", {}, self._check_plain)
        self._walk(
            "checkout.session",
            {"expand": ["data.payment_intent.latest_charge", "data.subscription"]},
            self._check_session,
        )
        self._walk("subscription", {"status": "all"}, self._check_plain)
        self._walk(
            "invoice",
            {"expand": ["data.parent.subscription_details.subscription"]},
            self._check_invoice,
        )
        self._walk("payment_intent", {}, self._check_intent)
        self._walk("charge", {"expand": ["data.payment_intent"]}, self._check_charge)
        self._walk("refund", {}, self._check_refund)
        self._walk("dispute", {}, self._check_dispute)
        self._check_orders_not_seen()
        self._check_plans()
        return self.findings

    def _check_plain(self, obj: dict[str, Any]):
        self._resolve(obj)
        return []

    def _check_intent(self, intent: dict[str, Any]):

        order = self._resolve(intent).order
        if (
            order is None
            or intent.get("status") != IntentStatus.SUCCEEDED
            or not intent_unrecorded(order=order, intent_id=intent["id"])
        ):
            return []
        amount = f"{intent.get('amount_received')} {intent.get('currency')}"
        return [
            self._found(
                Finding(
                    kind="unrecorded_payment",
                    object_type="payment_intent",
                    stripe_id=intent["id"],
                    order=order.public_id,
                    detail=f"succeeded ({amount}) naming the order; none of its payments",
                    fix="record it as the order's payment, flagged for support",
                ),
                lambda pid=intent["id"]: reconcile_fixes.intent_record(pid),
            )
        ]

    def _check_session(self, session: dict[str, Any]):
        link = self._resolve(session)
        repairs = []
        keys = metadata.link_keys(session)
        for related_type, related in (
            ("payment_intent", session.get("payment_intent")),
            ("subscription", session.get("subscription")),
        ):
            if isinstance(related, dict) and keys:
                repairs.append(self._keys_finding(related_type, related, keys, "its session"))
        intent = session.get("payment_intent")
        charge = intent.get("latest_charge") if isinstance(intent, dict) else None
        if isinstance(charge, dict) and keys:
            repairs.append(self._keys_finding("charge", charge, keys, "its session"))
        order = link.order
        if order is None:
            return repairs
        self.seen_orders.add(order.pk)
        current = order.checkout_session_id in (None, session["id"])
        paid = (
            session.get("status") == SessionStatus.COMPLETE
            and session.get("payment_status") in SessionPaymentStatus.SETTLED
        )
        if paid and _awaits_payment(order):
            repairs.append(
                self._unfulfilled(
                    session,
                    order,
                    "fulfil the order from the session as Stripe has it now",
                    lambda sid=session["id"]: reconcile_fixes.session_fulfil(sid),
                )
            )
        elif current and not paid and order.status in PAID_STATES:
            self._found(
                Finding(
                    kind="order_mismatch",
                    object_type="checkout.session",
                    stripe_id=session["id"],
                    order=order.public_id,
                    detail=(
                        f"order is {order.status} but its session is "
                        f"{session.get('status')}/{session.get('payment_status')}"
                    ),
                )
            )
        if current:  # after fulfilment: refunds apply to a paid order
            repairs.extend(self._compare(order, session, charge))
        return repairs

    def _compare(self, order: Order, session: dict[str, Any], charge: dict | None):
        differences = []
        if session.get("currency") and session["currency"] != order.currency:
            differences.append(f"currency {order.currency} here, {session['currency']} in Stripe")
        total = session.get("amount_total")
        if total is not None and total != order.amount_total:
            differences.append(f"amount {order.amount_total} here, {total} in Stripe")
        if differences:
            self._found(
                Finding(
                    kind="order_mismatch",
                    object_type="checkout.session",
                    stripe_id=session["id"],
                    order=order.public_id,
                    detail="; ".join(differences),
                )
            )
        refunded = (charge or {}).get("amount_refunded")
        if refunded is not None and refunded != order.amount_refunded:
            return [
                self._found(
                    Finding(
                        kind="order_mismatch",
                        object_type="charge",
                        stripe_id=charge["id"],
                        order=order.public_id,
                        detail=f"refunded {order.amount_refunded} here, {refunded} in Stripe",
                        fix="bring the order's refunds in line with the charge",
                    ),
                    lambda cid=charge["id"]: reconcile_fixes.refunds_sync(cid),
                )
            ]
        return []

    def _check_invoice(self, invoice: dict[str, Any]):
        link = self._resolve(invoice)
        repairs = []
        parent = (invoice.get("parent") or {}).get("subscription_details") or {}
        subscription = parent.get("subscription")
        if isinstance(subscription, dict):
            keys = metadata.link_keys(subscription)
            if keys:
                repairs.append(self._keys_finding("invoice", invoice, keys, "its subscription"))
        order = link.order
        if (
            order is not None
            and invoice.get("status") == InvoiceStatus.PAID
            and _awaits_payment(order)
        ):
            repairs.append(
                self._unfulfilled(
                    invoice,
                    order,
                    "record the invoice's payment from it as Stripe has it now",
                    lambda iid=invoice["id"]: reconcile_fixes.invoice_paid(iid),
                )
            )
        return repairs

    def _unfulfilled(self, obj: dict, order: Order, fix: str, action: Callable[[], str]):
        kind = obj["object"].replace("checkout.", "")
        return self._found(
            Finding(
                kind="unfulfilled_payment",
                object_type=obj["object"],
                stripe_id=obj["id"],
                order=order.public_id,
                detail=f"{kind} paid; order is {order.status}",
                fix=fix,
            ),
            action,
        )

    def _check_charge(self, charge: dict[str, Any]):
        self._resolve(charge)
        intent = charge.get("payment_intent")
        if isinstance(intent, dict):
            keys = metadata.link_keys(intent)
            if keys:
                return [self._keys_finding("charge", charge, keys, "its payment intent")]
        return []

    def _keys_finding(self, object_type: str, obj: dict, keys: dict[str, str], source: str):
        lacking = _missing(keys, obj)
        if not lacking:
            return None
        # One finding per object, however many walks reach it (a session's charge is also
        # reached from its payment intent).
        if any(f.kind == "missing_link_keys" and f.stripe_id == obj["id"] for f in self.findings):
            return None
        return self._found(
            Finding(
                kind="missing_link_keys",
                object_type=object_type,
                stripe_id=obj["id"],
                order=keys.get("order_id", ""),
                detail=f"lacks {', '.join(f'{k}={v}' for k, v in lacking.items())} of {source}",
                fix="copy the link keys onto it in Stripe",
            ),
            lambda: reconcile_fixes.keys_copy(object_type, obj["id"], lacking),
        )

    def _check_orders_not_seen(self) -> None:
        orders = Order.objects.exclude(checkout_session_id=None).exclude(pk__in=self.seen_orders)
        if self.since is not None:
            orders = orders.filter(created_at__gte=self.since)
        for order in orders.only("public_id", "checkout_session_id").iterator():
            self._found(
                Finding(
                    kind="order_mismatch",
                    object_type="checkout.session",
                    stripe_id=order.checkout_session_id,
                    order=order.public_id,
                    detail="the order's Checkout Session is not in Stripe (or does not link back)",
                )
            )


def _awaits_payment(order: Order) -> bool:
    return order.status not in PAID_STATES and order.status != Order.Status.CANCELED


def _attempt(action: Callable[[], str]) -> str:
    try:
        return action()
    except stripe_api.StripeAPIError as exc:
        return f"failed: {exc.message}"
    except Exception as exc:  # a repair that fails is reported; the others still run
        logger.exception("reconcile repair failed")
        return f"failed: {type(exc).__name__}: {exc}"


# --- The service ----------------------------------------------------------------------------


def reconcile_run(*, fix: bool = False, since: datetime | None = None) -> ReconcileReport:
    """Find (and with ``fix`` repair) what disagrees; store and return the report."""
    calls_at = stripe_api.calls_total()
    findings = Reconciler(fix=fix, since=since).run()
    counts = {kind: sum(1 for f in findings if f.kind == kind) for kind in KINDS}
    return ReconcileReport.objects.create(
        fix=fix,
        counts=counts,
        findings=[f.as_dict() for f in findings],
        api_calls=stripe_api.calls_total() - calls_at,
    )


def unresolved(report: ReconcileReport) -> int:
    """Findings still standing after the run: not fixed (or the fix failed)."""
    return sum(1 for f in report.findings if not f["fixed"] or f["fixed"].startswith("failed"))
