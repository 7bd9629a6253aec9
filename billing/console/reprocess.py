"""Reprocessing chosen events from the console: each put back in the queue when it can be, and
said why when it cannot; audited."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from billing import display, permissions
from billing.console import audit
from billing.models import (
    AuditEntry,
    InboundEvent,
)
from billing.webhooks.queue import event_reprocess

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reprocessed:
    event_id: str
    requeued: bool
    reason: str


def _not_requeued_reason(event: InboundEvent) -> str:
    if event.status == InboundEvent.Status.RETRYING:
        when = f" at {display.when(event.next_attempt_at)}" if event.next_attempt_at else ""
        return (
            f"not requeued: waiting for its retry{when} (attempt {event.attempts + 1} of "
            f"{settings.BILLING_EVENT_MAX_ATTEMPTS}); it runs then, and a second chain of "
            "attempts is never started"
        )
    if event.status == InboundEvent.Status.PROCESSING:
        return (
            "not requeued: a worker is processing it now; if that worker died, it is taken "
            f"over once its claim is {settings.BILLING_EVENT_LEASE_SECONDS:.0f} s old"
        )
    when = f" on {display.when(event.processed_at)}" if event.processed_at else ""
    if event.status == InboundEvent.Status.IGNORED:
        return (
            f"not requeued: ignored{when}, no handler is registered for {event.type}, "
            "so processing it again would do nothing"
        )
    return (
        f"not requeued: already processed{when}; its effects happened once and are not "
        "repeated (to refresh the object, use Resync from Stripe)"
    )


def events_reprocess_selected(
    *, actor: AbstractBaseUser, event_ids: list[str]
) -> list[Reprocessed]:
    """Requeue the chosen events that are not final; say for each why it was or was not."""
    audit.require(actor, [permissions.REPROCESS])
    found = {event.pk: event for event in InboundEvent.objects.filter(pk__in=event_ids)}
    outcomes = []
    for event_id in event_ids:
        event = found.get(event_id)
        if event is None:
            outcomes.append(Reprocessed(event_id, False, "not requeued: no such event stored"))
            continue
        before = event.status
        if not event.is_final:
            event = event_reprocess(event=event)
        requeued = not event.is_final and event.status == InboundEvent.Status.PENDING
        reason = (
            f"requeued (was {InboundEvent.Status(before).label})"
            if requeued
            else _not_requeued_reason(event)
        )
        with transaction.atomic():
            audit.entry(
                actor=actor,
                action=AuditEntry.Action.REPROCESS,
                object_type=event.object_type or "event",
                stripe_id=event.object_id or event.pk,
                before={"event": event.pk, "status": before},
                after={"event": event.pk, "status": event.status},
                result=AuditEntry.Result.DONE if requeued else AuditEntry.Result.REFUSED,
                message=f"{event.pk} ({event.type}): {reason}",
            )
            audit.log_entry(actor=actor, rows=[event], message=f"Reprocess: {reason}")
        outcomes.append(Reprocessed(event.pk, requeued, reason))
    return outcomes
