"""What the operators' commands leave: backfill runs with their checkpoints and failures, and
reconcile reports."""

from django.db import models
from django.utils import timezone


class BackfillRun(models.Model):
    """One run of ``manage.py stripe_backfill``: what it was asked and how it ended.

    Where each type stands is in its ``BackfillProgress`` rows, saved in the same transaction
    as each page's writes (with a ``BackfillPage``), so a run killed at any moment resumes
    after its last written page.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        INTERRUPTED = "interrupted", "interrupted (resumable)"
        FAILED = "failed", "stopped on an error (resumable)"
        COMPLETED = "completed", "completed"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    types = models.JSONField(help_text="Object types, in the order they are mirrored")
    since = models.DateTimeField(null=True, blank=True, help_text="Only objects created since")
    max_rps = models.FloatField(help_text="Client-side limit, requests per second")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    stopped_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"backfill #{self.pk} ({self.status})"


class BackfillProgress(models.Model):
    """The checkpoint of one type in a run: the cursor after the last page written, and the
    counts so far (the summary of an interrupted and resumed run is the sum of its parts)."""

    run = models.ForeignKey(BackfillRun, on_delete=models.CASCADE, related_name="progress")
    object_type = models.CharField(max_length=64)
    position = models.PositiveSmallIntegerField(help_text="Place in the dependency order")
    cursor = models.CharField(
        max_length=255, blank=True, help_text="Id of the last object written (starting_after)"
    )
    done = models.BooleanField(default=False)
    pages = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    linked = models.PositiveIntegerField(default=0)
    unlinked = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    api_calls = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "object_type"], name="backfill_type_once"),
        ]
        verbose_name_plural = "backfill progress"

    def __str__(self) -> str:
        return f"{self.object_type} after {self.cursor or 'the start'}"


class BackfillPage(models.Model):
    """A page a backfill wrote, saved in the page's own transaction. Pages written in
    parallel commit in any order; the type's ``cursor`` is moved only along pages written one
    after the other from it, so a run killed with a later page written but an earlier one not
    resumes at the earlier one, and then recognises the later one as written."""

    progress = models.ForeignKey(
        BackfillProgress, on_delete=models.CASCADE, related_name="written_pages"
    )
    after = models.CharField(
        max_length=255, blank=True, help_text="The cursor it was listed after (blank: first)"
    )
    last_id = models.CharField(max_length=255, blank=True, help_text="Its last object's id")
    last = models.BooleanField(default=False, help_text="The type's last page")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["progress", "at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["progress", "after"], name="backfill_page_once"),
        ]

    def __str__(self) -> str:
        return f"{self.progress.object_type} after {self.after or 'the start'}"


class BackfillFailure(models.Model):
    """An object a backfill could not write (or a list it could not read), kept for the
    summary and for the operator; the rest of its page is written without it."""

    run = models.ForeignKey(BackfillRun, on_delete=models.CASCADE, related_name="failures")
    object_type = models.CharField(max_length=64)
    stripe_id = models.CharField(max_length=255, blank=True)
    error = models.TextField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.object_type} {self.stripe_id or '(list)'}"


class ReconcileReport(models.Model):
    """What ``manage.py stripe_reconcile`` found (and, with ``--fix``, changed)."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    fix = models.BooleanField(default=False, help_text="Run with --fix")
    counts = models.JSONField(default=dict, help_text="Findings by kind")
    findings = models.JSONField(default=list)
    api_calls = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        total = sum(self.counts.values()) if self.counts else 0
        return f"reconcile {self.created_at:%Y-%m-%d %H:%M} ({total} finding(s))"
