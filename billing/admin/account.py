"""A customer's whole account, on its ``cus_`` page: every order, payment, refund, subscription
and invoice with its status and amount, newest first, and their events below.

Billing draws the Stripe objects' sections; the shop registers its orders' section
(``section_register``), so billing never imports it. Each section is one indexed query by the
customer (or its user), capped at ``ACCOUNT_ROWS`` rows with a link to the whole list where the
console has one: the page costs the same for a customer with five payments or five thousand.
A section is shown only to a reader who may open its rows' pages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

from billing import display, types, viewer
from billing.admin.base import admin_link

ACCOUNT_ROWS = 10


@dataclass(frozen=True)
class Section:
    """One list of the account: its rows as cells (HTML-safe), capped."""

    key: str  # the element id's tail: id="account-<key>"
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    more: bool  # more rows than shown
    all_url: str = ""  # the whole list, where the console has one
    stripe_ids: list[str] = field(default_factory=list)  # their events join the history


SectionMaker = Callable[[Any], Section | None]
_SECTIONS: list[tuple[int, SectionMaker]] = []


def section_register(make: SectionMaker, *, position: int = 50) -> None:
    """Add a section to every customer's page (``make(customer)``; None leaves it out)."""
    if all(existing is not make for _, existing in _SECTIONS):
        _SECTIONS.append((position, make))
        _SECTIONS.sort(key=lambda pair: pair[0])


def account_sections(customer) -> list[Section]:
    return [section for _, make in _SECTIONS if (section := make(customer)) is not None]


# --- The Stripe objects' sections ----------------------------------------------------------------


@dataclass(frozen=True)
class _StripeList:
    key: str
    title: str
    object_type: str
    by_customer: str  # the lookup from the type's rows to the customer's id
    searchable: bool = True  # its list finds rows by the customer's id (?q=cus_…)


_STRIPE_LISTS = (
    _StripeList("payments", "Payments", "charge", "customer_id"),
    _StripeList("refunds", "Refunds", "refund", "charge__customer_id", searchable=False),
    _StripeList("subscriptions", "Subscriptions", "subscription", "customer_id"),
    _StripeList("invoices", "Invoices", "invoice", "customer_id"),
)


def _stripe_section(spec: _StripeList, customer) -> Section | None:
    model = types.model_for(spec.object_type)
    label = f"{model._meta.app_label}_{model._meta.model_name}"
    if not viewer.may_open(label):
        return None
    found = list(
        model.objects.filter(**{spec.by_customer: customer.id})
        .only("id", "created", "stripe_data")
        .order_by("-created", "-djstripe_id")[: ACCOUNT_ROWS + 1]
    )
    rows = [
        (
            admin_link(spec.object_type, row.id),
            display.status_text(spec.object_type, row.stripe_data or {}),
            display.amount_text(spec.object_type, row.stripe_data or {}) or "-",
            display.when(row.created),
        )
        for row in found[:ACCOUNT_ROWS]
    ]
    url = reverse(f"admin:{label}_changelist")
    return Section(
        key=spec.key,
        title=spec.title,
        columns=("Stripe id", "status", "amount", "created"),
        rows=rows,
        more=len(found) > ACCOUNT_ROWS,
        all_url=f"{url}?{urlencode({'q': customer.id})}" if spec.searchable else "",
        stripe_ids=[row.id for row in found[:ACCOUNT_ROWS]],
    )


def _stripe_maker(spec: _StripeList) -> SectionMaker:
    def make(customer) -> Section | None:
        return _stripe_section(spec, customer)

    make.__name__ = f"account_{spec.key}"
    return make


for _position, _spec in enumerate(_STRIPE_LISTS, start=1):
    section_register(_stripe_maker(_spec), position=60 + _position)
