"""The rules that keep the console's lists at one cost on any size of table, checked on the SQL
each list and search sends: no ``SELECT DISTINCT`` for a filter's choices, no ``UPPER(…)`` or
``LIKE '%…%'`` a search could not use an index for, no count of every row (counts stop at the
cap), no date drill-down. How fast that is on a big database: ``bench/console_scale.py``."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.admin.base import CappedPaginator
from billing.models import InboundEvent

pytestmark = pytest.mark.django_db(transaction=True)

FORBIDDEN = {
    "a filter's choices read from the table": re.compile(r"SELECT DISTINCT", re.I),
    "a search no index serves": re.compile(r"UPPER\(|LIKE\s+'%", re.I),
    "a date drill-down": re.compile(r"DATE_TRUNC|django_date_trunc|django_datetime_trunc", re.I),
}


def lists(world) -> dict[str, str]:
    paid = world.paid
    urls = {}
    for model in ("customer", "session", "paymentintent", "charge", "refund", "subscription",
                  "invoice"):  # fmt: skip
        changelist = reverse(f"admin:djstripe_{model}_changelist")
        urls[f"{model} list"] = changelist
        urls[f"{model} by id"] = f"{changelist}?q={paid.customer_id}"
        urls[f"{model} by order"] = f"{changelist}?q={paid.public_id}"
    urls["customers by email"] = reverse("admin:djstripe_customer_changelist") + "?q=a@b.c"
    urls["customers by email start"] = reverse("admin:djstripe_customer_changelist") + "?q=sho*"
    urls["invoices by number"] = reverse("admin:djstripe_invoice_changelist") + "?q=ABC-0001"
    for model in ("inboundevent", "webhookdelivery", "objectsync", "auditentry", "resyncjob",
                  "webhookrejectcount", "webhookrejectsample"):  # fmt: skip
        changelist = reverse(f"admin:billing_{model}_changelist")
        urls[f"{model} list"] = changelist
        urls[f"{model} searched"] = f"{changelist}?q={paid.payment_intent_id}"
    orders = reverse("admin:orders_order_changelist")
    for term in ("", paid.public_id, paid.number, "shopper@example.com", "shopp*", "shopper",
                 paid.payment_intent_id, "evt_unknown", "ABCD1234-0001", "words of nothing"):  # fmt: skip
        urls[f"orders searched {term!r}"] = f"{orders}?q={term}"
    payments = reverse("admin:orders_orderpayment_changelist")
    urls["payments flagged"] = f"{payments}?flagged=yes"
    urls["payments resolved"] = f"{payments}?flagged=resolved"
    urls["payments searched"] = f"{payments}?q={paid.number}"
    urls["accounts"] = reverse("admin:auth_user_changelist") + "?q=shopper@example.com"
    return urls


def test_no_list_reads_a_whole_table_to_filter_search_or_count(world, staff):
    client = staff.client("superuser")
    failures = []
    for name, url in lists(world).items():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, (name, url)
        # every list shows its filters: their choices come from the code
        for query in queries.captured_queries:
            for rule, pattern in FORBIDDEN.items():
                if pattern.search(query["sql"]):
                    failures.append(f"{name}: {rule}: {query['sql'][:300]}")
            if re.match(r"SELECT COUNT\(\*\)", query["sql"]) and "LIMIT" not in query["sql"]:
                failures.append(f"{name}: a count of every row: {query['sql'][:300]}")
    assert not failures, "\n".join(failures)


def test_a_list_longer_than_the_cap_says_more_than(world, staff, monkeypatch):
    monkeypatch.setattr(CappedPaginator, "cap", 3)
    assert InboundEvent.objects.count() > 3
    response = staff.client("billing").get(reverse("admin:billing_inboundevent_changelist"))
    page = response.content.decode()
    assert "more than 3 inbound events" in page
    # selecting every row across pages of an uncounted list is not offered
    assert 'class="question' not in page and "inbound events</a>" not in page
    # a short list counts exactly
    response = staff.client("billing").get(
        reverse("admin:orders_order_changelist"), {"q": world.paid.public_id}
    )
    assert "1 result" in response.content.decode()
