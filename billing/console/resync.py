"""Resync from Stripe: one object now (its changes shown and audited), or many as a background
job whose page shows the progress."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing import mirror, permissions, stripe_api
from billing.console import audit, limits
from billing.mirror import compare
from billing.models import (
    AuditEntry,
    ResyncJob,
)
from config import celery

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resynced:
    object_type: str
    stripe_id: str
    changes: list[list[Any]]  # [[field, before, after], ...]
    deleted: bool
    written: bool
    entry: AuditEntry


def _resync(
    *, actor: AbstractBaseUser | None, object_type: str, stripe_id: str, job: ResyncJob | None
) -> Resynced:
    logged = {
        "actor": actor,
        "object_type": object_type,
        "stripe_id": stripe_id,
        "action": AuditEntry.Action.RESYNC,
        "job": job,
    }
    try:
        synced = mirror.object_sync(object_type=object_type, stripe_id=stripe_id)
    except stripe_api.StripeAPIError as exc:
        audit.entry(**logged, result=AuditEntry.Result.FAILED, message=exc.message)
        raise
    new = synced.written and synced.previous is None
    changes = (
        compare.data_changes(synced.previous, synced.obj) if synced.previous is not None else []
    )
    notes = []
    if new:
        notes.append("not mirrored before; now it is")
    if synced.deleted:
        notes.append("deleted in Stripe; marked deleted in the mirror")
    if not synced.written:
        notes.append("the mirror already held a copy fetched later; kept that one")
    notes.append(f"{len(changes)} field(s) changed" if changes else "no field changed")
    entry = audit.entry(
        **logged,
        before={field: old for field, old, _ in changes},
        after={field: new for field, _, new in changes},
        changes=changes,
        result=(
            AuditEntry.Result.DONE
            if changes or new or synced.deleted
            else AuditEntry.Result.UNCHANGED
        ),
        message="; ".join(notes),
    )
    audit.log_entry(
        actor=actor,
        rows=[synced.mirror] if synced.mirror is not None else [],
        message=f"Resynced from Stripe: {notes[-1]}",
    )
    return Resynced(
        object_type=object_type,
        stripe_id=stripe_id,
        changes=changes,
        deleted=synced.deleted,
        written=synced.written,
        entry=entry,
    )


def object_resync(*, actor: AbstractBaseUser, object_type: str, stripe_id: str) -> Resynced:
    """Fetch one object from Stripe (registered expansions), write the mirror, say what changed.

    Goes through ``billing.mirror.object_sync``: no transaction is held during the fetch, and a
    copy older than the mirror's is never written over it. Call outside ``transaction.atomic``.
    Raises ``StripeAPIError`` (after auditing it) when Stripe cannot be asked.
    """
    audit.require(actor, permissions.resync_permissions(object_type=object_type))
    return _resync(actor=actor, object_type=object_type, stripe_id=stripe_id, job=None)


# More objects than this are resynced by a background job (Stripe allows 25 requests/s in
# test mode; a request should not wait on hundreds of fetches).
RESYNC_INLINE_LIMIT = 20
# Errors after which every further call would fail the same way: the job stops.
_JOB_STOPPERS = frozenset({"authentication", "configuration"})


class ResyncRefused(Exception):
    """A resync job was not queued: too many objects, or too many jobs already going."""


def resync_job_start(
    *, actor: AbstractBaseUser, object_type: str, stripe_ids: list[str]
) -> ResyncJob:
    """Queue a background resync of many objects; its progress is on the job's admin page.

    At most ``settings.CONSOLE_RESYNC_JOB_MAX_OBJECTS`` objects per job and
    ``CONSOLE_RESYNC_JOBS_AT_ONCE`` jobs queued or running at once (checked under a lock, so
    two clicks at the same moment cannot both pass); otherwise ``ResyncRefused``.
    """
    audit.require(actor, permissions.resync_permissions(object_type=object_type))
    ids = list(dict.fromkeys(stripe_ids))
    most = settings.CONSOLE_RESYNC_JOB_MAX_OBJECTS
    if len(ids) > most:
        raise ResyncRefused(
            f"A resync job takes at most {most:,} objects ({len(ids):,} selected): filter the "
            "list down, or ask an operator to run manage.py stripe_backfill."
        )
    with limits.one_at_a_time("resync-jobs"), transaction.atomic():
        # A job whose worker died stays "running"; after an hour it no longer holds a place.
        going = ResyncJob.objects.filter(
            status__in=[ResyncJob.Status.QUEUED, ResyncJob.Status.RUNNING],
            created_at__gte=timezone.now() - timedelta(hours=1),
        ).count()
        if going >= settings.CONSOLE_RESYNC_JOBS_AT_ONCE:
            raise ResyncRefused(
                f"{going} resync jobs are queued or running, the most at once: try again when "
                "one has finished (their pages show the progress)."
            )
        job = ResyncJob.objects.create(
            created_by=actor, object_type=object_type, stripe_ids=ids, total=len(ids)
        )
        audit.log_entry(
            actor=actor, rows=[job], message=f"Queued a resync of {len(ids)} {object_type} objects"
        )

        transaction.on_commit(lambda: celery.task("billing.resync_job").delay(job.pk))
    return job


def resync_job_run(*, job_id: int) -> ResyncJob:
    """Resync each object of a job, counting progress as it goes (safe to run again)."""
    job = ResyncJob.objects.select_related("created_by").get(pk=job_id)
    if not job.is_running:
        return job
    ResyncJob.objects.filter(pk=job.pk).update(
        status=ResyncJob.Status.RUNNING, started_at=job.started_at or timezone.now()
    )
    already = set(job.entries.values_list("stripe_id", flat=True))
    try:
        for stripe_id in job.stripe_ids:
            if stripe_id in already:
                continue  # a redelivered task picks up where the killed one stopped
            if stop := _resync_job_step(job=job, stripe_id=stripe_id):
                return _resync_job_end(job=job, status=ResyncJob.Status.FAILED, error=stop)
    except Exception:
        _resync_job_end(job=job, status=ResyncJob.Status.FAILED, error=traceback.format_exc())
        raise
    return _resync_job_end(job=job, status=ResyncJob.Status.FINISHED)


def _resync_job_step(*, job: ResyncJob, stripe_id: str) -> str | None:
    """Resync one object of the job and count it; return why the job must stop, if it must."""
    counters: dict[str, Any] = {"done": F("done") + 1}
    stop = None
    try:
        result = _resync(
            actor=job.created_by, object_type=job.object_type, stripe_id=stripe_id, job=job
        )
        if result.changes:
            counters["changed"] = F("changed") + 1
    except stripe_api.StripeAPIError as exc:
        counters["failed"] = F("failed") + 1
        if exc.kind in _JOB_STOPPERS:
            stop = exc.message
    ResyncJob.objects.filter(pk=job.pk).update(**counters)
    return stop


def _resync_job_end(*, job: ResyncJob, status: str, error: str = "") -> ResyncJob:
    ResyncJob.objects.filter(pk=job.pk).update(
        status=status, error=error, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job
