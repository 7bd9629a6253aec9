"""Editing an object's Stripe metadata from the console: loaded fresh from Stripe, checked
against Stripe's limits and the product's rules, sent as the changes only, with an idempotency
key, refused when Stripe's copy changed since the form was loaded; audited."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from billing import metadata, mirror, permissions, stripe_api
from billing.console import audit, limits
from billing.models import (
    AuditEntry,
)

logger = logging.getLogger(__name__)


def _as_metadata(data: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (data.get("metadata") or {}).items()}


class MetadataInvalid(Exception):
    """The edit was not sent: ``errors`` maps a key (or "" for the whole edit) to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(
            "; ".join(f"{k}: {' '.join(v)}" if k else " ".join(v) for k, v in errors.items())
        )
        self.errors = errors


class MetadataConflict(Exception):
    """Stripe's metadata changed since the form was loaded; nothing was sent."""

    def __init__(self, *, current: dict[str, str], keys: list[str]):
        super().__init__(
            "The metadata changed in Stripe since this form was loaded "
            f"({', '.join(keys)}); nothing was saved. The form now shows Stripe's current "
            "values: check them and save again."
        )
        self.message = str(self)
        self.current = current
        self.keys = keys


@dataclass(frozen=True)
class MetadataUpdated:
    before: dict[str, str]
    after: dict[str, str]
    sent: dict[str, str]
    entry: AuditEntry | None  # None when nothing needed sending


def metadata_fetch(*, object_type: str, stripe_id: str) -> dict[str, str]:
    """The object's metadata as Stripe has it now (the edit form starts from this)."""
    data = stripe_api.as_dict(stripe_api.retrieve(object_type=object_type, stripe_id=stripe_id))
    return _as_metadata(data)


def metadata_errors(
    *,
    object_type: str,
    before: dict[str, str],
    changes: dict[str, str],
    owners: list[str] | tuple[str, ...] = (),
) -> dict[str, list[str]]:
    """Every reason not to send ``changes`` ({} when they may go): Stripe's limits, secrets,
    card data, reserved keys, link keys that name no existing row or another user's (than
    ``owners``, the users the object belongs to: ``metadata.object_owners``)."""
    errors: dict[str, list[str]] = {}
    for key, value in changes.items():
        problems = []
        if key in metadata.RESERVED_KEYS:
            problems.append(f"{key} is managed by the application and cannot be edited here.")
        if value != "" or key not in before:
            problems += metadata.key_errors(key)
        if value != "":
            problems += metadata.value_errors(value)
        if problems:
            errors[key] = problems
    after = metadata.apply_changes(before, changes)
    if count := metadata.count_error(after):
        errors.setdefault("", []).append(count)
    touched = [key for key, value in changes.items() if value != ""]
    for key, message in metadata.link_errors(after, keys=touched, owners=owners).items():
        errors.setdefault(key, []).append(message)
    return errors


def metadata_update(
    *,
    actor: AbstractBaseUser,
    object_type: str,
    stripe_id: str,
    expected: dict[str, str],
    changes: dict[str, str],
    request_token: str,
) -> MetadataUpdated:
    """Change an object's metadata in Stripe: only the keys that changed ("" deletes one).

    ``expected`` is the metadata the person saw (fetched when the form loaded). The object is
    fetched again first; if its metadata differs, someone or something changed it meanwhile
    and the edit is refused (``MetadataConflict``) rather than overwrite what they did. The
    update carries an idempotency key from the form's token and content, so a double submit
    is one change. The mirror is written from Stripe's answer through ``billing.mirror``.
    Raises ``limits.Busy`` when another save of the object holds its lock too long.
    """
    sent = {key: value for key, value in changes.items() if expected.get(key, "") != value}
    audit.require(actor, permissions.metadata_permissions(object_type=object_type, keys=list(sent)))
    if not sent:
        return MetadataUpdated(before=expected, after=expected, sent={}, entry=None)
    if errors := metadata_errors(object_type=object_type, before=expected, changes=sent):
        raise MetadataInvalid(errors)

    # Read, compare and write as one step per object: of two saves from forms loaded at the
    # same version, the second waits, then sees the first's write and is refused.
    with limits.one_at_a_time(f"metadata:{stripe_id}"):
        return _metadata_update_locked(
            actor=actor,
            object_type=object_type,
            stripe_id=stripe_id,
            expected=expected,
            sent=sent,
            request_token=request_token,
        )


def _metadata_update_locked(
    *,
    actor: AbstractBaseUser,
    object_type: str,
    stripe_id: str,
    expected: dict[str, str],
    sent: dict[str, str],
    request_token: str,
) -> MetadataUpdated:
    logged = {
        "actor": actor,
        "object_type": object_type,
        "stripe_id": stripe_id,
        "action": AuditEntry.Action.METADATA_UPDATE,
    }
    try:
        fresh = stripe_api.as_dict(
            stripe_api.retrieve(object_type=object_type, stripe_id=stripe_id)
        )
    except stripe_api.StripeAPIError as exc:
        audit.entry(
            **logged,
            before=expected,
            after=None,
            result=AuditEntry.Result.FAILED,
            message=exc.message,
        )
        raise
    current = _as_metadata(fresh)
    if current != dict(expected) and current == metadata.apply_changes(expected, sent):
        # Stripe already holds exactly this edit: the same form submitted twice.
        return MetadataUpdated(before=expected, after=current, sent={}, entry=None)
    if current != dict(expected):
        keys = sorted(metadata.changes_between(expected, current))
        audit.entry(
            **logged,
            before=expected,
            after=current,
            result=AuditEntry.Result.REFUSED,
            message=f"refused: changed in Stripe since the form was loaded ({', '.join(keys)})",
        )
        raise MetadataConflict(current=current, keys=keys)
    # The links checked again against the object as Stripe has it now (its customer, the
    # orders it is tied to): the decision that counts is the one made under the lock.
    owners = metadata.object_owners(data=fresh)
    if errors := metadata_errors(
        object_type=object_type, before=current, changes=sent, owners=owners
    ):
        raise MetadataInvalid(errors)

    key = stripe_api.idempotency_key(
        "metadata",
        object_type,
        stripe_id,
        request_token,
        json.dumps([current, sent], sort_keys=True),
    )
    started = mirror.fetch_started()
    try:
        updated = stripe_api.update(
            object_type=object_type,
            stripe_id=stripe_id,
            params={"metadata": sent},
            idempotency_key=key,
        )
    except stripe_api.StripeAPIError as exc:
        audit.entry(
            **logged,
            before=current,
            after=None,
            result=AuditEntry.Result.FAILED,
            message=exc.message,
            idempotency_key=key,
        )
        raise
    data = stripe_api.as_dict(updated)
    after = _as_metadata(data)
    changed = [[k, current.get(k), after.get(k)] for k in sorted(sent)]
    with transaction.atomic():
        written = mirror.object_write(data=data, started_at=started)
        entry = audit.entry(
            **logged,
            before=current,
            after=after,
            changes=changed,
            result=AuditEntry.Result.DONE,
            idempotency_key=key,
            message=f"changed {', '.join(sorted(sent))}",
        )
        audit.log_entry(
            actor=actor,
            rows=[written.mirror] if written.mirror is not None else [],
            message=f"Edited Stripe metadata: {', '.join(sorted(sent))}",
        )
    return MetadataUpdated(before=current, after=after, sent=sent, entry=entry)
