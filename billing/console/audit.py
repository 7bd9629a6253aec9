"""What the console records of every action: the audit log entry and Django's admin history."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied

from billing.models import (
    AuditEntry,
)

logger = logging.getLogger(__name__)


def require(actor: AbstractBaseUser, permissions: list[str]) -> None:
    if not actor.has_perms(permissions):
        raise PermissionDenied(f"{actor.get_username()} lacks {', '.join(permissions)}")


def log_entry(*, actor: AbstractBaseUser | None, rows: list[Any], message: str) -> None:
    """The same action in Django's admin log (each object's History page)."""
    if actor is None:
        return
    LogEntry.objects.bulk_create(
        LogEntry(
            user_id=actor.pk,
            content_type=ContentType.objects.get_for_model(row),
            object_id=str(row.pk),
            # A mirrored row by its Stripe id: dj-stripe's str() misformats money, and queries.
            object_repr=str(getattr(row, "id", None) or row)[:200],
            action_flag=CHANGE,
            change_message=message,
        )
        for row in rows
    )


def entry(
    *, actor: AbstractBaseUser | None, action: str, object_type: str, stripe_id: str, **fields
) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        action=action,
        object_type=object_type,
        stripe_id=stripe_id,
        **fields,
    )
