"""Admin pages for the operators' commands: read-only, escaped, gated by view permission."""

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User

from billing.models import BackfillFailure, BackfillProgress, BackfillRun, ReconcileReport

ADMIN = f"/{settings.ADMIN_URL}"
pytestmark = pytest.mark.django_db


def a_report(n: int = 0) -> ReconcileReport:
    return ReconcileReport.objects.create(
        fix=bool(n % 2),
        counts={"dangling_link": 1, "missing_link_keys": 1},
        findings=[
            {"kind": "dangling_link", "object_type": "payment_intent", "stripe_id": f"pi_{n}",
             "order": "ord_x", "detail": "<script>alert(1)</script>", "fix": "", "fixed": ""},
            {"kind": "missing_link_keys", "object_type": "charge", "stripe_id": f"ch_{n}",
             "order": "ord_y", "detail": "lacks order_id", "fix": "copy the link keys",
             "fixed": "copied order_id"},
        ],
        api_calls=12,
    )  # fmt: skip


def a_run(n: int = 0) -> BackfillRun:
    run = BackfillRun.objects.create(types=["customer", "charge"], max_rps=20, status="failed")
    BackfillProgress.objects.create(run=run, object_type="customer", position=0, created=n)
    BackfillProgress.objects.create(run=run, object_type="charge", position=1, cursor="ch_1")
    BackfillFailure.objects.create(run=run, object_type="charge", stripe_id="ch_2", error="boom")
    return run


def test_report_page_shows_the_findings_escaped(admin_client):
    report = a_report()

    page = admin_client.get(f"{ADMIN}billing/reconcilereport/{report.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "pi_0" in html and "copied order_id" in html and "needs a person" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_backfill_run_page_shows_progress_and_failures(admin_client):
    run = a_run()

    page = admin_client.get(f"{ADMIN}billing/backfillrun/{run.pk}/change/")

    assert page.status_code == 200
    assert "ch_2" in page.content.decode() and "boom" in page.content.decode()


@pytest.mark.parametrize("model", ["reconcilereport", "backfillrun"])
def test_changelists_are_cheap_and_nothing_is_editable(
    admin_client, django_assert_max_num_queries, model
):
    for n in range(30):
        a_report(n)
        a_run(n)
    with django_assert_max_num_queries(12):
        assert admin_client.get(f"{ADMIN}billing/{model}/").status_code == 200
    assert admin_client.get(f"{ADMIN}billing/{model}/add/").status_code == 403
    row = (
        ReconcileReport.objects.first()
        if model == "reconcilereport"
        else BackfillRun.objects.first()
    )
    assert (
        admin_client.post(f"{ADMIN}billing/{model}/{row.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )


def test_staff_need_the_view_permission(client):
    report = a_report()
    staff = User.objects.create_user("ops", password="a-long-test-password", is_staff=True)
    client.force_login(staff)
    url = f"{ADMIN}billing/reconcilereport/{report.pk}/change/"
    assert client.get(url).status_code == 403

    staff.user_permissions.add(Permission.objects.get(codename="view_reconcilereport"))
    assert client.get(url).status_code == 200
    assert client.get(f"{ADMIN}billing/backfillrun/").status_code == 403
