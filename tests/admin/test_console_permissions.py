"""The permission matrix: each console action by each kind of staff user, as direct POSTs.

Support may resync and edit metadata other than the link keys; Billing admin may also edit
link keys, reprocess events and act on webhook endpoints; a staff user without permissions
may do nothing. Refused POSTs answer 403 and change nothing in Stripe or here; allowed ones
leave an audit entry and a Django admin log entry.
"""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import quote
from django.urls import reverse
from djstripe.models import Charge

from billing import stripe_api
from billing.models import AuditEntry, InboundEvent
from tests.admin.test_console_metadata import load_form, post_form

pytestmark = pytest.mark.django_db(transaction=True)

OK, DENIED, NOT_OFFERED = "ok", "403", "not offered"
WHO = ("superuser", "support", "billing", "nobody")
MATRIX = {
    "resync a charge": (OK, OK, OK, DENIED),
    "resync the webhook endpoint": (OK, DENIED, OK, DENIED),
    "edit a charge's metadata": (OK, OK, OK, DENIED),
    "edit a charge's order_id": (OK, DENIED, OK, DENIED),
    "edit the webhook endpoint's metadata": (OK, DENIED, OK, DENIED),
    "reprocess on the object page": (OK, DENIED, OK, DENIED),
    "reprocess on the order page": (OK, DENIED, OK, DENIED),
    "resync action on the changelist": (OK, OK, OK, DENIED),
    "reprocess action on the event list": (OK, NOT_OFFERED, OK, DENIED),
}


def url(name: str, key: str) -> str:
    return reverse(f"admin:{name}", args=[quote(key)])


def failed_event(world) -> InboundEvent:
    event = InboundEvent.objects.filter(object_id=world.paid.payment_intent_id).first()
    InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.FAILED)
    return event


def stripe_metadata(object_type: str, stripe_id: str) -> dict:
    obj = stripe_api.retrieve(object_type=object_type, stripe_id=stripe_id)
    return dict(stripe_api.as_dict(obj).get("metadata") or {})


def attempt(action: str, client, world) -> tuple[int, str, str]:
    """Do ``action`` as the client's user; return the status, the object and the audit action."""
    charge = Charge.objects.get(payment_intent_id=world.paid.payment_intent_id, status="succeeded")
    endpoint = world.endpoint
    if action == "resync a charge":
        response = client.post(url("djstripe_charge_resync", charge.id))
        return response.status_code, charge.id, "resync"
    if action == "resync the webhook endpoint":
        response = client.post(url("djstripe_webhookendpoint_resync", endpoint.id))
        return response.status_code, endpoint.id, "resync"
    if action in ("edit a charge's metadata", "edit a charge's order_id"):
        page = url("djstripe_charge_metadata", charge.id)
        form = load_form(client, page, fallback_object=("charge", charge.id))
        if action == "edit a charge's metadata":
            response = post_form(client, page, form, {"note": "checked by support"})
        else:
            response = post_form(
                client, page, form, {"order_id": world.declined.public_id}, confirm=True
            )
        return response.status_code, charge.id, "metadata_update"
    if action == "edit the webhook endpoint's metadata":
        page = url("djstripe_webhookendpoint_metadata", endpoint.id)
        form = load_form(client, page, fallback_object=("webhook_endpoint", endpoint.id))
        response = post_form(client, page, form, {"owner": "billing team"})
        return response.status_code, endpoint.id, "metadata_update"
    if action == "reprocess on the object page":
        event = failed_event(world)
        response = client.post(
            url("djstripe_paymentintent_reprocess", event.object_id), {"event": [event.pk]}
        )
        return response.status_code, event.object_id, "reprocess"
    if action == "reprocess on the order page":
        event = failed_event(world)
        response = client.post(
            url("orders_order_reprocess", world.paid.public_id), {"event": [event.pk]}
        )
        return response.status_code, event.object_id, "reprocess"
    if action == "resync action on the changelist":
        response = client.post(
            reverse("admin:djstripe_charge_changelist"),
            {"action": "resync_selected", "_selected_action": [charge.pk]},
        )
        return response.status_code, charge.id, "resync"
    if action == "reprocess action on the event list":
        event = failed_event(world)
        response = client.post(
            reverse("admin:billing_inboundevent_changelist"),
            {"action": "reprocess", "_selected_action": [event.pk]},
        )
        return response.status_code, event.object_id, "reprocess"
    raise AssertionError(action)


@pytest.mark.parametrize("who", WHO)
def test_each_action_by_each_group(world, staff, who):
    user = getattr(staff, who)
    client = staff.client(who)
    column = WHO.index(who)
    failures = []
    for action, expected in MATRIX.items():
        charge = Charge.objects.get(
            payment_intent_id=world.paid.payment_intent_id, status="succeeded"
        )
        before_stripe = stripe_metadata("charge", charge.id)
        audits = set(AuditEntry.objects.values_list("pk", flat=True))
        logs = LogEntry.objects.filter(user=user).count()

        status, stripe_id, audit_action = attempt(action, client, world)

        new = AuditEntry.objects.exclude(pk__in=audits).filter(actor=user, action=audit_action)
        outcome = expected[column]
        if outcome == OK:
            ok = status == 302 and new.filter(stripe_id=stripe_id).exists()
            ok = ok and LogEntry.objects.filter(user=user).count() > logs
        elif outcome == DENIED:
            ok = status == 403 and not new.exists()
            ok = ok and stripe_metadata("charge", charge.id) == before_stripe
        else:  # not offered: Django answers the changelist, nothing happens
            ok = status in (200, 302) and not new.exists()
        if not ok:
            failures.append(f"{action}: expected {outcome}, got {status}, audit {list(new)}")
    assert not failures, "\n".join(failures)


def test_buttons_show_only_to_those_allowed(world, staff):
    charge = Charge.objects.get(payment_intent_id=world.paid.payment_intent_id, status="succeeded")
    page = url("djstripe_charge_change", charge.id)
    order_page = url("orders_order_change", world.paid.public_id)
    support = staff.client("support").get(page).content.decode()
    billing = staff.client("billing").get(page).content.decode()
    # Support: edit and resync, but no Reprocess
    assert "Edit Stripe metadata" in support and "Resync from Stripe" in support
    assert "Event history" in support and 'id="reprocess"' not in support
    # Billing admin: all three
    assert 'id="reprocess"' in billing and "Edit Stripe metadata" in billing
    assert 'id="reprocess"' in staff.client("billing").get(order_page).content.decode()
    assert 'id="reprocess"' not in staff.client("support").get(order_page).content.decode()
    # A staff user who may only look sees neither button
    viewer = staff.nobody
    viewer.user_permissions.add(*_permissions("view_charge", "view_order"))
    client = staff.client("nobody")
    content = client.get(page).content.decode()
    assert client.get(page).status_code == 200
    assert "Edit Stripe metadata" not in content and "Resync from Stripe" not in content
    # and the resync action is not offered on the changelist either
    assert (
        "resync_selected"
        not in client.get(reverse("admin:djstripe_charge_changelist")).content.decode()
    )


def _permissions(*codenames):
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(codename__in=codenames)
