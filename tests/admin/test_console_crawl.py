"""Every admin page a person can reach, as each kind of staff user: no 500, 403 where due,
and no Stripe secret in any body. The rows are seeded through the emulator with real
checkouts (tests/admin/conftest.py), so every registered model has a page to open."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import NoReverseMatch, reverse

from billing import permissions
from billing.admin.stripe_objects import StripeObjectAdmin
from orders.admin.orders import OrderAdmin
from orders.admin.payments import OrderPaymentAdmin
from tests.admin.conftest import SECRETS

pytestmark = pytest.mark.django_db(transaction=True)

# A full key or secret: masked ones (sk_test_…4f2a) have the ellipsis where this needs text.
LEAK = re.compile(
    r"\b(sk|rk)_(test|live)_[0-9A-Za-z]{4,}|\bwhsec_[0-9A-Za-z+/=_-]{4,}|_secret_[0-9A-Za-z]{4,}"
)


@dataclass(frozen=True)
class Page:
    url: str
    model_admin: admin.ModelAdmin
    kind: str  # changelist, search, change, history, metadata, resync, reprocess, fetch_events


def crawl_pages(world) -> list[Page]:
    pages = []
    for model, model_admin in admin.site._registry.items():
        info = f"{model._meta.app_label}_{model._meta.model_name}"
        changelist = reverse(f"admin:{info}_changelist")
        row = model._default_manager.order_by("pk").first()
        assert row is not None, f"seed has no {info} row: the crawl would miss its pages"
        pages.append(Page(changelist, model_admin, "changelist"))
        key = getattr(row, "id", None) if isinstance(model_admin, StripeObjectAdmin) else None
        for term in filter(None, [key, "shopper", world.paid.payment_intent_id]):
            pages.append(Page(f"{changelist}?q={term}", model_admin, "search"))
        pages.append(
            Page(reverse(f"admin:{info}_change", args=[quote(row.pk)]), model_admin, "change")
        )
        pages.append(
            Page(reverse(f"admin:{info}_history", args=[quote(row.pk)]), model_admin, "history")
        )
        if isinstance(model_admin, StripeObjectAdmin):
            # Pages by Stripe id too (every console link uses them).
            pages.append(
                Page(reverse(f"admin:{info}_change", args=[quote(row.id)]), model_admin, "change")
            )
            for name in ("metadata", "resync", "reprocess", "fetch_events"):
                pages.append(
                    Page(reverse(f"admin:{info}_{name}", args=[quote(row.id)]), model_admin, name)
                )
            pages.append(
                Page(f"{changelist}action/_cancel/{model._meta.model_name}/", model_admin, "gone")
            )
        if isinstance(model_admin, OrderPaymentAdmin):
            for value in ("yes", "no", "resolved", "unexpected", "amount_mismatch"):
                pages.append(Page(f"{changelist}?flagged={value}", model_admin, "changelist"))
            pages.append(Page(f"{changelist}?q={world.declined.number}", model_admin, "search"))
        if isinstance(model_admin, OrderAdmin):
            for order in (world.paid, world.subscription, world.declined):
                pages.append(
                    Page(
                        reverse(f"admin:{info}_change", args=[quote(order.public_id)]),
                        model_admin,
                        "change",
                    )
                )
            pages.append(
                Page(
                    reverse("admin:orders_order_reprocess", args=[quote(world.paid.public_id)]),
                    model_admin,
                    "reprocess",
                )
            )
    pages.append(Page(reverse("admin:index"), None, "index"))
    for app in ("orders", "billing", "djstripe", "auth"):
        with contextlib.suppress(NoReverseMatch):  # an app with no registered model
            pages.append(Page(reverse("admin:app_list", args=[app]), None, "app"))
    return pages


def allowed_status(user, page: Page) -> set[int]:
    """What this user should get: 200 (or a redirect for POST-only views), or 403."""
    if page.kind in ("index", "app"):
        return {200, 404} if page.kind == "app" else {200}
    if page.kind == "gone":
        return {404, 403}
    model_admin = page.model_admin
    request = type("R", (), {"user": user})()
    if not model_admin.has_view_permission(request):
        return {403}
    object_type = getattr(model_admin, "object_type", "")
    needs = {
        "metadata": permissions.metadata_permissions(object_type=object_type),
        "resync": permissions.resync_permissions(object_type=object_type),
        "reprocess": [permissions.REPROCESS] if object_type else [],
        "fetch_events": [permissions.RESYNC],
    }.get(page.kind, [])
    if not user.has_perms(needs):
        return {403}
    return {302} if page.kind in ("reprocess", "fetch_events") else {200}


@pytest.mark.parametrize("who", ["superuser", "support", "billing", "nobody"])
def test_every_admin_page_answers_as_it_should_and_leaks_no_secret(world, staff, who):
    user = getattr(staff, who)
    client = staff.client(who)
    secrets = [*SECRETS, world.endpoint.secret]
    problems = []
    pages = crawl_pages(world)
    for page in pages:
        response = client.get(page.url)
        body = response.content.decode()
        expected = allowed_status(user, page)
        if response.status_code not in expected:
            problems.append(f"{page.url}: {response.status_code}, expected {sorted(expected)}")
        if leak := LEAK.search(body):
            problems.append(f"{page.url}: leaks {leak.group()[:12]}…")
        problems += [f"{page.url}: leaks a configured secret" for s in secrets if s and s in body]
    assert len(pages) > 80
    assert not problems, "\n".join(problems)
