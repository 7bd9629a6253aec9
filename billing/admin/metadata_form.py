"""The "Edit Stripe metadata" form: loaded fresh from Stripe, its rows checked, the link keys
confirmed on a page naming what they point at, sent as changes only
(``billing.console.metadata_edit``).

The metadata as loaded stays on the server (the cache, per user and form, for a day); the page
carries only a signed token. A row whose key or value is sensitive (a secret, a card number, a
key named like a password: ``config.sensitive``) is shown masked, with no input holding it: it
can be kept or removed, never read back.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from django.contrib import messages
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect

from billing import metadata, permissions
from billing.admin.views import ConsoleView, stripe_error_text
from billing.console import limits, metadata_edit
from billing.stripe_api import StripeAPIError
from config import sensitive

_STATE_SALT = "billing.metadata-form"
STATE_MAX_AGE = 24 * 3600
EXTRA_ROWS = 3


@dataclass
class Row:
    key: str
    value: str
    original: str = ""  # the key this row had when the form loaded ("" for a new row)
    ref: str = ""  # what the page sends back for ``original``: its position when loaded
    remove: bool = False
    locked: bool = False  # a link key the user may not change
    hidden: bool = False  # sensitive: never sent to the browser, only kept or removed
    errors: list[str] = field(default_factory=list)

    @property
    def blank(self) -> bool:
        return not self.key and not self.value and not self.original


def is_hidden(key: str, value: str) -> bool:
    return (
        sensitive.is_sensitive(key)
        or sensitive.is_sensitive(value)
        or (sensitive.is_sensitive_key(key))
    )


def scrub(rows: list[Row]) -> list[Row]:
    """Refused secrets and card numbers typed into a row are not echoed back into the page."""
    for row in rows:
        if row.hidden:
            continue
        if sensitive.is_sensitive(row.key):
            row.key = ""
            row.errors.append("The key was cleared: it is not shown again.")
        if row.value and (sensitive.is_sensitive(row.value) or sensitive.is_sensitive_key(row.key)):
            row.value = ""
            row.errors.append("The value was cleared: it is not shown again.")
    return rows


def form_state(user, loaded: dict[str, str], token: str) -> str:
    """Keep ``loaded`` on the server for ``user``'s form ``token``; the page's signed state."""
    cache.set(_cache_key(user, token), loaded, STATE_MAX_AGE)
    return signing.dumps({"token": token}, salt=_STATE_SALT)


def _cache_key(user, token: str) -> str:
    return f"billing:metadata-form:{user.pk}:{token}"


class MetadataEditView(ConsoleView):
    """One row per key, fetched fresh from Stripe; rows to add, change and remove.

    The metadata as loaded is kept on the server under the form's token; the save compares it
    with a fresh fetch (the service refuses when they differ). Link key changes need their own
    permission and a confirmation step naming the order or user.
    """

    template = "admin/billing/stripe_object/metadata_form.html"
    confirm_template = "admin/billing/stripe_object/metadata_confirm.html"

    def permissions_needed(self) -> list[str]:
        return permissions.metadata_permissions(object_type=self.model_admin.object_type)

    @property
    def may_link(self) -> bool:
        return self.request.user.has_perm(permissions.EDIT_LINK_METADATA)

    def rows_for(self, loaded: dict[str, str]) -> list[Row]:
        rows = [
            Row(
                key=k,
                value=v,
                original=k,
                ref=str(position),
                locked=k in metadata.LINK_KEYS and not self.may_link,
                hidden=is_hidden(k, v),
            )
            for position, (k, v) in enumerate(sorted(loaded.items()))
        ]
        return rows + [Row(key="", value="") for _ in range(EXTRA_ROWS)]

    def form(self, *, rows: list[Row], loaded: dict[str, str], token: str, **context):
        state = form_state(self.request.user, loaded, token)
        return self.render(
            self.template,
            title=f"Edit Stripe metadata of {self.obj.id}",
            rows=rows,
            state=state,
            loaded=loaded,
            may_link=self.may_link,
            link_keys=metadata.LINK_KEYS,
            limits={
                "keys": metadata.MAX_KEYS,
                "key": metadata.MAX_KEY_LENGTH,
                "value": metadata.MAX_VALUE_LENGTH,
            },
            **context,
        )

    def get(self, request, object_id):
        if wait := limits.stripe_calls_wait(request.user):
            messages.error(request, limits.wait_text(wait))
            return self.back()
        try:
            loaded = metadata_edit.metadata_fetch(
                object_type=self.object_type, stripe_id=self.obj.id
            )
        except StripeAPIError as exc:
            messages.error(
                request, f"Could not load the metadata from Stripe. {stripe_error_text(exc)}"
            )
            return self.back()
        return self.form(rows=self.rows_for(loaded), loaded=loaded, token=secrets.token_urlsafe(16))

    def post(self, request, object_id):
        try:
            state = signing.loads(
                request.POST.get("state", ""), salt=_STATE_SALT, max_age=STATE_MAX_AGE
            )
            token = state["token"]
            loaded = cache.get(_cache_key(request.user, token))
        except (signing.BadSignature, KeyError, TypeError):
            loaded = None
        if loaded is None:
            messages.warning(
                request, "The form was too old or damaged; it now shows Stripe's current metadata."
            )
            return HttpResponseRedirect(self.urls["metadata"])
        rows = self.parse_rows(request, loaded)
        after, row_errors = self.read(rows)
        changes = metadata.changes_between(loaded, after)
        if metadata.link_keys_in(changes) and not self.may_link:
            raise PermissionDenied("Changing order_id or user_id needs the link key permission.")
        if not row_errors:
            errors = metadata_edit.metadata_errors(
                object_type=self.object_type,
                before=loaded,
                changes=changes,
                owners=metadata.object_owners(data=self.obj.stripe_data or {}),
            )
            row_errors = self.attach(rows, errors)
        if row_errors:
            return self.form(rows=scrub(rows), loaded=loaded, token=token, form_errors=row_errors)
        if not changes:
            messages.info(request, "Nothing changed; nothing was sent to Stripe.")
            return self.back()
        if metadata.link_keys_in(changes) and "confirm" not in request.POST:
            return self.confirm(
                rows=rows, loaded=loaded, after=after, changes=changes, state=request.POST["state"]
            )
        return self.save(rows=rows, loaded=loaded, changes=changes, token=token)

    def parse_rows(self, request, loaded: dict[str, str]) -> list[Row]:
        """The rows as posted; a hidden row keeps the key and value loaded (its inputs hold
        nothing), whatever the page sent."""
        keys, values = request.POST.getlist("key"), request.POST.getlist("value")
        refs = request.POST.getlist("original")
        removed = set(request.POST.getlist("remove"))
        loaded_keys = sorted(loaded)
        rows = []
        for index, key in enumerate(keys):
            ref = refs[index] if index < len(refs) else ""
            original = (
                loaded_keys[int(ref)] if ref.isdigit() and int(ref) < len(loaded_keys) else ""
            )
            row = Row(
                key=key.strip(),
                value=values[index] if index < len(values) else "",
                original=original,
                ref=ref if original else "",
                remove=str(index) in removed,
                locked=original in metadata.LINK_KEYS and not self.may_link,
                hidden=bool(original) and is_hidden(original, loaded[original]),
            )
            if row.hidden:
                row.key, row.value = original, loaded[original]
            rows.append(row)
        return rows

    def read(self, rows: list[Row]) -> tuple[dict[str, str], list[str]]:
        """The metadata the rows describe, and per-row problems (attached to the rows)."""
        after: dict[str, str] = {}
        problems = []
        for row in rows:
            if row.blank or row.remove:
                continue
            if not row.key:
                row.errors.append("A key is required (or clear the value to leave the row out).")
            elif row.key in metadata.LINK_KEYS and row.key != row.original and not self.may_link:
                # Said before "appears twice": the object may hold the key already, locked.
                row.errors.append(
                    f"{row.key} is a link key: it ties this object to an order or a user, so "
                    "adding or changing it needs the link permission (the Billing admin group "
                    "has it). Leave this row empty, or ask someone in Billing admin."
                )
            elif row.key in after:
                row.errors.append(f"{row.key} appears twice; each key once.")
            elif not row.value:
                row.errors.append(
                    "A value is required; to delete the key, tick remove (an empty value deletes it in Stripe)."
                    if row.original
                    else "A value is required."
                )
            else:
                after[row.key] = row.value
            problems += row.errors
        return after, problems

    def attach(self, rows: list[Row], errors: dict[str, list[str]]) -> list[str]:
        messages_ = []
        for key, problems in errors.items():
            target = next((r for r in rows if key and (r.key == key or r.original == key)), None)
            if target is not None:
                target.errors += problems
            messages_ += [f"{key}: {p}" if key else p for p in problems]
        return messages_

    def confirm(self, *, rows, loaded, after, changes, state):
        targets = metadata.link_targets(after)
        link_changes = [
            {
                "key": key,
                "before": loaded.get(key),
                "after": value or None,
                "target": targets.get(key),
            }
            for key, value in sorted(changes.items())
            if key in metadata.LINK_KEYS
        ]
        return self.render(
            self.confirm_template,
            title=f"Confirm the link change on {self.obj.id}",
            rows=rows,
            state=state,
            changes=[(k, loaded.get(k), v or None) for k, v in sorted(changes.items())],
            link_changes=link_changes,
        )

    def save(self, *, rows, loaded, changes, token):
        request = self.request
        if wait := limits.stripe_calls_wait(request.user):
            messages.error(request, limits.wait_text(wait))
            return self.form(rows=scrub(rows), loaded=loaded, token=token)
        try:
            result = metadata_edit.metadata_update(
                actor=request.user,
                object_type=self.object_type,
                stripe_id=self.obj.id,
                expected=loaded,
                changes=changes,
                request_token=token,
            )
        except metadata_edit.MetadataConflict as exc:
            attempted = [(k, loaded.get(k), v or None) for k, v in sorted(changes.items())]
            return self.form(
                rows=self.rows_for(exc.current),
                loaded=exc.current,
                token=secrets.token_urlsafe(16),
                conflict=exc,
                attempted=attempted,
            )
        except metadata_edit.MetadataInvalid as exc:
            errors = self.attach(rows, exc.errors)
            return self.form(rows=scrub(rows), loaded=loaded, token=token, form_errors=errors)
        except limits.Busy:
            messages.error(
                request,
                "Someone else is saving this object's metadata right now; nothing was sent. "
                "Save again in a moment (you will see their change first if it touched yours).",
            )
            return self.form(rows=scrub(rows), loaded=loaded, token=token)
        except StripeAPIError as exc:
            messages.error(request, f"Stripe did not save the metadata. {stripe_error_text(exc)}")
            return self.form(rows=scrub(rows), loaded=loaded, token=token)
        if not result.sent:
            messages.info(
                request, "Stripe already has these values (saved once); nothing more was sent."
            )
            return self.back()
        keys = ", ".join(sorted(result.sent))
        messages.success(request, f"Saved in Stripe: {keys} on {self.obj.id}.")
        return self.back()
