"""Editing Stripe metadata from the console: Stripe's limits, no secrets or card data, link
keys that must name real rows and be confirmed, and a refusal when Stripe changed meanwhile.
Stripe is the emulator over HTTP; what is asserted is what Stripe and the mirror then hold."""

from __future__ import annotations

import html
from dataclasses import dataclass

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.urls import reverse
from djstripe.models import Charge, WebhookEndpoint

from billing import metadata, stripe_api
from billing.admin.metadata_form import form_state
from billing.display import mask, mask_secrets
from billing.models import AuditEntry, ObjectSync
from config import sensitive

# --- Driving the form as a browser would ------------------------------------------------------


@dataclass
class Form:
    state: str
    rows: list[tuple[str, str, str]]  # (original key, key, value), in page order

    @property
    def refs(self) -> dict[str, str]:
        """What the page sends back for each original key: its position when loaded."""
        return {
            original: str(i) for i, original in enumerate(sorted(r[0] for r in self.rows if r[0]))
        }


def load_form(client, page: str, fallback_object: tuple[str, str] | None = None) -> Form:
    """GET the form; for a user who may not, forge what the page would hold (a direct POST)."""
    response = client.get(page)
    if response.status_code == 200:
        return Form(state=response.context["state"], rows=page_rows(response))
    assert fallback_object is not None, response.status_code
    object_type, stripe_id = fallback_object
    loaded = stripe_metadata(object_type, stripe_id)
    user = get_user_model().objects.get(pk=client.session["_auth_user_id"])
    state = form_state(user, loaded, "forged")
    return Form(state=state, rows=[(k, k, v) for k, v in sorted(loaded.items())])


def page_rows(response) -> list[tuple[str, str, str]]:
    return [(r.original, r.key, r.value) for r in response.context["rows"]]


def form_data(form: Form, changes: dict[str, str | None]) -> dict:
    """The POST body: existing rows with ``changes`` applied (None ticks remove), new keys added."""
    keys, values, originals, removes = [], [], [], []
    rows = [row for row in form.rows if row[1] or row[0]]
    for index, (original, key, value) in enumerate(rows):
        originals.append(form.refs.get(original, ""))
        keys.append(key)
        values.append(changes.get(key, value) or value)
        if key in changes and changes[key] is None:
            removes.append(str(index))
    for key, value in changes.items():
        if value is not None and key not in {row[1] for row in rows}:
            originals.append("")
            keys.append(key)
            values.append(value)
    return {"state": form.state, "key": keys, "value": values, "original": originals,
            "remove": removes}  # fmt: skip


def post_form(client, page: str, form: Form, changes: dict, *, confirm: bool = False):
    data = form_data(form, changes)
    response = client.post(page, data)
    if confirm and response.status_code == 200 and b'id="confirm-metadata"' in response.content:
        response = client.post(page, {**data, "confirm": "1"})
    return response


def stripe_metadata(object_type: str, stripe_id: str) -> dict:
    obj = stripe_api.retrieve(object_type=object_type, stripe_id=stripe_id)
    return dict(stripe_api.as_dict(obj).get("metadata") or {})


def paid_charge(world) -> Charge:
    return Charge.objects.get(payment_intent_id=world.paid.payment_intent_id, status="succeeded")


def metadata_page(charge) -> str:
    return reverse("admin:djstripe_charge_metadata", args=[quote(charge.id)])


# --- The rules, as pure functions -----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("k" * 41, "v", "at most 40 characters"),
        ("items[0]", "v", "square brackets"),
        ("note", "v" * 501, "at most 500 characters"),
        ("note", "sk_test_51HxY2abcdefghijklmnop", "Stripe secret"),
        ("note", "rk_live_abcdefghijkl", "Stripe secret"),
        ("note", "whsec_-abc_defGHI", "Stripe secret"),
        ("note", "pi_3Mtw_secret_abcdefgh", "Stripe secret"),
        ("note", "card 4242 4242 4242 4242 exp 12/30", "card number"),
        ("note", "4000-0566-5566-5556", "card number"),
        ("password", "hunter2", "password, secret or token"),
        ("apiKey", "x", "password, secret or token"),
        ("client_secret", "x", "password, secret or token"),
    ],
)
def test_refused_rows(key, value, problem):
    errors = metadata.key_errors(key) + metadata.value_errors(value)
    assert any(problem in e for e in errors), errors


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("k" * 40, "v" * 500),  # at the limits
        ("note", "4242424242424241"),  # 16 digits failing Luhn: not a card
        ("phone", "+44 20 7946 0958"),
        ("tracking", "1Z999AA10123456784"),
        ("passenger_count", "2"),
        ("order_id", "ord_0a1b2c"),
    ],
)
def test_accepted_rows(key, value):
    assert metadata.key_errors(key) + metadata.value_errors(value) == []


def test_luhn():
    assert sensitive.luhn_valid("4242424242424242")
    assert sensitive.luhn_valid("79927398713")
    assert not sensitive.luhn_valid("4242424242424241")


def test_changes_send_only_what_changed_and_empty_deletes():
    before = {"a": "1", "b": "2", "c": "3"}
    after = {"a": "1", "b": "20", "d": "4"}
    assert metadata.changes_between(before, after) == {"b": "20", "d": "4", "c": ""}
    assert metadata.apply_changes(before, {"b": "20", "d": "4", "c": ""}) == after
    assert metadata.count_error({str(i): "v" for i in range(51)})
    assert metadata.count_error({str(i): "v" for i in range(50)}) is None


def test_masking_keeps_only_the_kind_and_last_four():
    assert mask("sk_test_51HxY2abcdefghijkl4f2a") == "sk_test_…4f2a"
    assert mask("whsec_-abcdefghijklmnop_4f2a") == "whsec_…4f2a"
    text = mask_secrets('{"secret": "whsec_-abc_defghijklmnop", "key": "rk_live_abcdefgh1234"}')
    assert "defghijklmnop" not in text and "abcdefgh1234" not in text
    assert "whsec_…mnop" in text and "rk_live_…1234" in text


# --- Through the admin, against the emulator ---------------------------------------------------

pytestmark_db = pytest.mark.django_db(transaction=True)


@pytestmark_db
def test_the_form_starts_from_stripe_not_the_mirror(world, staff):
    charge = paid_charge(world)
    # Given a key added in Stripe that the mirror has not seen
    stripe_api.update(
        object_type="charge", stripe_id=charge.id, params={"metadata": {"fresh": "yes"}}
    )
    assert "fresh" not in (Charge.objects.get(pk=charge.pk).metadata or {})
    # When support opens the form, it shows Stripe's current metadata
    form = load_form(staff.client("support"), metadata_page(charge))
    assert ("fresh", "fresh", "yes") in form.rows
    assert ("order_id", "order_id", world.paid.public_id) in form.rows


@pytestmark_db
def test_an_edit_goes_to_stripe_then_the_mirror_and_is_audited(world, staff):
    charge = paid_charge(world)
    stripe_api.update(object_type="charge", stripe_id=charge.id, params={"metadata": {"old": "x"}})
    client = staff.client("support")
    form = load_form(client, metadata_page(charge))
    synced_before = ObjectSync.objects.get(stripe_id=charge.id).fetch_started_at

    # When support changes a value, adds a key and removes one
    response = post_form(client, metadata_page(charge), form,
                         {"note": "called the customer", "old": None})  # fmt: skip

    assert response.status_code == 302
    held = stripe_metadata("charge", charge.id)
    assert held["note"] == "called the customer" and "old" not in held
    assert held["order_id"] == world.paid.public_id  # untouched keys stay
    # the mirror took Stripe's answer through the ordering guard
    charge.refresh_from_db()
    assert charge.metadata == held
    assert ObjectSync.objects.get(stripe_id=charge.id).fetch_started_at > synced_before
    # and it is on record: who, before, after, the changes sent, in the audit and admin log
    entry = AuditEntry.objects.filter(stripe_id=charge.id, actor=staff.support).get()
    assert entry.result == AuditEntry.Result.DONE
    assert entry.before["old"] == "x" and "old" not in entry.after
    assert sorted(c[0] for c in entry.changes) == ["note", "old"]
    assert entry.idempotency_key.startswith("shop-")
    assert LogEntry.objects.filter(user=staff.support, object_id=str(charge.pk)).exists()
    page = client.get(response["Location"]).content.decode()
    assert "called the customer" in page and "Saved in Stripe" in page


@pytestmark_db
def test_a_double_submit_changes_once(world, staff):
    charge = paid_charge(world)
    client = staff.client("support")
    form = load_form(client, metadata_page(charge))
    first = post_form(client, metadata_page(charge), form, {"note": "once"})
    second = post_form(client, metadata_page(charge), form, {"note": "once"})
    assert first.status_code == second.status_code == 302
    assert AuditEntry.objects.filter(stripe_id=charge.id, actor=staff.support).count() == 1
    assert stripe_metadata("charge", charge.id)["note"] == "once"


@pytestmark_db
def test_the_save_is_refused_when_stripe_changed_since_the_form_loaded(world, staff):
    charge = paid_charge(world)
    client = staff.client("support")
    # Given support opened the form
    form = load_form(client, metadata_page(charge))
    # and meanwhile someone changed the metadata in Stripe (the Dashboard, another process)
    stripe_api.update(
        object_type="charge", stripe_id=charge.id, params={"metadata": {"note": "theirs"}}
    )

    # When support saves their edit
    response = post_form(client, metadata_page(charge), form, {"note": "mine"})

    # Then nothing is sent, the page says why and shows Stripe's current values
    assert response.status_code == 200
    assert "changed in Stripe since this form was loaded" in response.content.decode()
    assert stripe_metadata("charge", charge.id)["note"] == "theirs"
    assert ("note", "note", "theirs") in [
        (r.original, r.key, r.value) for r in response.context["rows"]
    ]
    entry = AuditEntry.objects.get(stripe_id=charge.id, actor=staff.support)
    assert entry.result == AuditEntry.Result.REFUSED and entry.after["note"] == "theirs"
    # and saving again from the reloaded form works
    retry = Form(state=response.context["state"], rows=page_rows(response))
    assert post_form(client, metadata_page(charge), retry, {"note": "mine"}).status_code == 302
    assert stripe_metadata("charge", charge.id)["note"] == "mine"


@pytestmark_db
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"card": "4242 4242 4242 4242"}, "card number"),
        ({"note": "sk_test_51HxY2abcdefghijklmnop"}, "Stripe secret"),
        ({"bad[key]": "v"}, "square brackets"),
        ({"note": "v" * 501}, "at most 500"),
        ({"api_token": "v"}, "password, secret or token"),
        ({f"k{i}": "v" for i in range(50)}, "at most 50 keys"),
    ],
)
def test_invalid_rows_send_nothing(world, staff, changes, message):
    charge = paid_charge(world)
    client = staff.client("support")
    before = stripe_metadata("charge", charge.id)
    form = load_form(client, metadata_page(charge))
    response = post_form(client, metadata_page(charge), form, {"fine": "ok", **changes})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert "Nothing was sent to Stripe" in response.content.decode()
    assert stripe_metadata("charge", charge.id) == before  # not even the valid row
    assert not AuditEntry.objects.filter(stripe_id=charge.id, actor=staff.support).exists()
    assert "sk_test_51HxY2abcdefghijklmnop" not in response.content.decode()


@pytestmark_db
def test_link_keys_must_name_a_real_order_and_user_and_agree(world, staff):
    charge = paid_charge(world)
    client = staff.client("billing")
    page = metadata_page(charge)
    cases = [
        ({"order_id": "ord_doesnotexist"}, "No order 'ord_doesnotexist' exists"),
        ({"user_id": "987654"}, "No user '987654' exists"),
        ({"user_id": str(staff.billing.pk)}, f"user {world.customer.pk} through"),
    ]
    for changes, message in cases:
        response = post_form(client, page, load_form(client, page), changes, confirm=True)
        assert response.status_code == 200, changes
        assert message in html.unescape(response.content.decode()), changes
    assert stripe_metadata("charge", charge.id)["order_id"] == world.paid.public_id


@pytestmark_db
def test_link_change_is_confirmed_by_naming_the_order(world, staff):
    charge = paid_charge(world)
    client = staff.client("billing")
    page = metadata_page(charge)
    form = load_form(client, page)
    target = world.declined

    # When Billing admin points the charge at another order of the same user
    first = post_form(client, page, form, {"order_id": target.public_id})

    # Then a confirmation names that order, and nothing is sent yet
    text = first.content.decode()
    assert first.status_code == 200 and 'id="confirm-metadata"' in text
    assert f"will be linked to order {target.public_id}" in text
    assert "¥1,500" in text and target.email in text
    assert stripe_metadata("charge", charge.id)["order_id"] == world.paid.public_id

    # When they confirm, Stripe and the mirror hold the new link
    confirmed = post_form(client, page, form, {"order_id": target.public_id}, confirm=True)
    assert confirmed.status_code == 302
    assert stripe_metadata("charge", charge.id)["order_id"] == target.public_id
    assert Charge.objects.get(pk=charge.pk).metadata["order_id"] == target.public_id
    # and the charge's page now links to that order
    change_page = client.get(reverse("admin:djstripe_charge_change", args=[quote(charge.id)]))
    assert (
        reverse("admin:orders_order_change", args=[quote(target.public_id)])
        in change_page.content.decode()
    )


@pytestmark_db
def test_support_sees_link_keys_locked_and_cannot_post_them(world, staff):
    charge = paid_charge(world)
    client = staff.client("support")
    page = metadata_page(charge)
    response = client.get(page)
    locked = {r.key: r.locked for r in response.context["rows"] if r.key}
    assert locked["order_id"] and locked["user_id"]
    assert "needs the link permission" in response.content.decode()
    # A crafted POST removing the link is refused outright
    form = load_form(client, page)
    assert post_form(client, page, form, {"order_id": None}).status_code == 403
    assert stripe_metadata("charge", charge.id)["order_id"] == world.paid.public_id


@pytestmark_db
def test_reserved_keys_cannot_be_edited(world, staff):
    endpoint = WebhookEndpoint.objects.get(pk=world.endpoint.pk)
    client = staff.client("billing")
    page = reverse("admin:djstripe_webhookendpoint_metadata", args=[quote(endpoint.id)])
    response = post_form(client, page, load_form(client, page), {"djstripe_uuid": "tampered"})
    assert response.status_code == 200
    assert "managed by the application" in response.content.decode()
    assert stripe_metadata("webhook_endpoint", endpoint.id)["djstripe_uuid"] == str(
        endpoint.djstripe_uuid
    )


@pytestmark_db
def test_a_stripe_error_becomes_an_actionable_message(world, staff, settings):
    charge = paid_charge(world)
    client = staff.client("support")
    form = load_form(client, metadata_page(charge))
    # Given the shop's key is refused by Stripe (rotated without updating the setting)
    settings.STRIPE_SECRET_KEY = "sk_live_rotatedawaykey0000001234"

    response = post_form(client, metadata_page(charge), form, {"note": "x"})

    text = html.unescape(response.content.decode())
    assert "Stripe did not save the metadata. Stripe refused the shop's API key" in text
    assert "STRIPE_SECRET_KEY" in text
    assert "rotatedawaykey" not in text  # the key never appears, even from Stripe's message
    entry = AuditEntry.objects.get(stripe_id=charge.id, actor=staff.support)
    assert entry.result == AuditEntry.Result.FAILED
