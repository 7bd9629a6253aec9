"""The webhook inbox and the pipeline's own bookkeeping.

The Stripe objects themselves are mirrored in dj-stripe's models. These models record what
reached us (every delivery, accepted or not), what each event did when processed, and how
fresh the mirror of each object is (the ordering guard).
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class InboundEvent(models.Model):
    """One Stripe event, stored once whatever the number of deliveries or endpoints."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        PROCESSING = "processing", "processing (claimed by a worker)"
        RETRYING = "retrying", "retrying after an error"
        PROCESSED = "processed", "processed"
        IGNORED = "ignored", "ignored (no handler)"
        FAILED = "failed", "failed (retries exhausted)"

    FINAL = (Status.PROCESSED, Status.IGNORED)

    id = models.CharField(primary_key=True, max_length=255, help_text="Stripe event id (evt_...)")
    type = models.CharField(max_length=255)
    api_version = models.CharField(max_length=64, blank=True)
    livemode = models.BooleanField(default=False)
    created = models.DateTimeField(help_text="When Stripe created the event")
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=255, blank=True)
    request_id = models.CharField(max_length=255, blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True)
    payload = models.JSONField(help_text="The event as first delivered (a snapshot, not acted on)")
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    outcome = models.TextField(blank=True, help_text="What processing did, in words")
    last_error = models.TextField(blank=True, help_text="Traceback of the last failed attempt")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # The lease: when a worker claimed the event (status "processing"). A claim older than
    # BILLING_EVENT_LEASE_SECONDS belongs to a worker that died; the periodic requeue hands the
    # event to another. The claim time is also the claim's identity: only its holder finishes.
    claimed_at = models.DateTimeField(null=True, blank=True)
    # When a task was last published for the event (or its retry is due); None when a publish
    # failed (broker down), so the next periodic requeue sends it at once.
    queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-received_at", "-id"]
        permissions = [("reprocess_inboundevent", "Can reprocess Stripe events")]
        # The console's lists, whole or filtered, in their order; an object's history.
        indexes = [
            models.Index(fields=["created", "received_at", "id"], name="inbound_event_list"),
            models.Index(
                fields=["type", "created", "received_at", "id"], name="inbound_event_type"
            ),
            models.Index(
                fields=["status", "created", "received_at", "id"], name="inbound_event_status"
            ),
            models.Index(fields=["object_id", "-created"], name="inbound_event_object"),
            models.Index(fields=["request_id"], name="inbound_event_request"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL


class WebhookDelivery(models.Model):
    """Every accepted POST to a webhook URL: a new event or a duplicate (the delivery log).

    The event's JSON is stored once, on ``InboundEvent.payload``. Refused POSTs are counted
    in ``WebhookRejectCount`` (rows marked rejected here predate that and age out by pruning).
    """

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted", "accepted (new event)"
        DUPLICATE = "duplicate", "accepted (event already stored)"
        REJECTED = "rejected", "rejected"

    endpoint = models.ForeignKey(
        "djstripe.WebhookEndpoint",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    endpoint_uuid = models.UUIDField(help_text="The endpoint uuid in the URL it was sent to")
    event = models.ForeignKey(
        InboundEvent,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="deliveries",
    )
    received_at = models.DateTimeField(default=timezone.now)
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField()
    reason = models.TextField(blank=True, help_text="Why it was rejected")
    body_size = models.PositiveIntegerField(default=0)
    signature_timestamp = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["received_at", "id"], name="webhook_delivery_list"),
            models.Index(fields=["endpoint_uuid", "received_at"], name="webhook_delivery_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} {self.status_code} at {self.received_at:%Y-%m-%d %H:%M:%S}"


class RejectReason(models.TextChoices):
    """The kinds of refused POST to a webhook URL (``billing.webhooks.intake.DeliveryRejected``)."""

    UNKNOWN_ENDPOINT = "unknown_endpoint", "unknown or disabled endpoint"
    TOO_LARGE = "too_large", "body over the size limit"
    NOT_UTF8 = "not_utf8", "body is not UTF-8"
    MISSING_SIGNATURE = "missing_signature", "no signature"
    BAD_SIGNATURE = "bad_signature", "signature does not verify"
    STALE_TIMESTAMP = "stale_timestamp", "signed too long ago"
    FUTURE_TIMESTAMP = "future_timestamp", "signed in the future"
    MALFORMED_JSON = "malformed_json", "malformed JSON"
    NOT_AN_EVENT = "not_an_event", "not a Stripe event"


class WebhookRejectCount(models.Model):
    """Refused POSTs to webhook URLs, counted per endpoint uuid, kind of refusal and minute.

    Anyone can POST to the URLs, so a refusal costs one upsert, never a row per request.
    """

    endpoint_uuid = models.UUIDField(help_text="The endpoint uuid in the URL it was sent to")
    reason = models.CharField(
        max_length=32, choices=RejectReason.choices, help_text="The kind of refusal"
    )
    status_code = models.PositiveSmallIntegerField()
    minute = models.DateTimeField(help_text="The minute (UTC) the refusals fell in")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-minute", "endpoint_uuid", "reason"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint_uuid", "reason", "minute"], name="webhook_reject_count_once"
            ),
        ]
        indexes = [models.Index(fields=["minute"], name="webhook_reject_minute")]
        verbose_name = "rejected webhook count"

    def __str__(self) -> str:
        return f"{self.count} x {self.reason} on {self.endpoint_uuid} at {self.minute:%H:%M}"


class WebhookRejectSample(models.Model):
    """A few recent refused POSTs in detail (never their bodies): the first few of each kind
    per endpoint and minute, the newest ``REJECT_SAMPLES`` kept."""

    endpoint_uuid = models.UUIDField()
    reason = models.CharField(max_length=32, choices=RejectReason.choices)
    detail = models.TextField(blank=True, help_text="Why it was refused, in words")
    status_code = models.PositiveSmallIntegerField()
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    body_size = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-received_at", "-pk"]
        verbose_name = "rejected webhook sample"

    def __str__(self) -> str:
        return f"{self.status_code} {self.reason} at {self.received_at:%Y-%m-%d %H:%M:%S}"


class DeliveryCount(models.Model):
    """Events delivered, counted per hour, endpoint uuid and API version: what pages about the
    webhooks' traffic read (the API versions page, the endpoint list), so they cost the same at
    any volume. Whole hours only, kept by ``billing.traffic`` (the periodic task, and each
    reader before it reads)."""

    hour = models.DateTimeField(help_text="The hour (UTC) the deliveries fell in")
    endpoint_uuid = models.UUIDField(help_text="The endpoint uuid in the URL they were sent to")
    api_version = models.CharField(max_length=64, blank=True)
    events = models.PositiveIntegerField(default=0, help_text="Distinct events delivered")

    class Meta:
        ordering = ["-hour"]
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "endpoint_uuid", "api_version"], name="delivery_count_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.events} events to {self.endpoint_uuid} at {self.hour:%Y-%m-%d %H}:00"


class WebhookSecret(models.Model):
    """A rotated-out signing secret, still accepted until it expires (the rotation overlap).

    The current secret lives on dj-stripe's ``WebhookEndpoint.secret``.
    """

    endpoint = models.ForeignKey(
        "djstripe.WebhookEndpoint", on_delete=models.CASCADE, related_name="+"
    )
    secret = models.CharField(max_length=255)
    expires_at = models.DateTimeField()
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"previous secret of {self.endpoint_id}, until {self.expires_at:%Y-%m-%d %H:%M}"


class ObjectSync(models.Model):
    """How fresh the mirror of one Stripe object is: the ordering guard's memory.

    ``fetch_started_at`` is when the fetch (or the request) whose answer the mirror holds
    began. A copy from an earlier fetch is never written over it, and an event received
    before that moment is already reflected in ``snapshot`` (Stripe answered with a state at
    least as new as the event), so it needs no fetch of its own. See ``billing.mirror``.
    """

    stripe_id = models.CharField(primary_key=True, max_length=255)
    object_type = models.CharField(max_length=64)
    fetch_started_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    fetch_count = models.PositiveIntegerField(default=0)
    deleted_at = models.DateTimeField(null=True, blank=True)
    snapshot = models.JSONField(
        null=True, blank=True, help_text="The object as last fetched, with its expansions"
    )
    snapshot_expand = models.JSONField(
        default=list, blank=True, help_text="The expansions the snapshot carries"
    )

    class Meta:
        verbose_name = "object sync state"
        indexes = [models.Index(fields=["object_type", "stripe_id"], name="object_sync_type")]

    def __str__(self) -> str:
        return f"{self.object_type} {self.stripe_id}"


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


class AuditEntry(models.Model):
    """One action taken from the support console on a Stripe object: who, when, what, result.

    Metadata edits, resyncs and reprocessing each leave one entry, whether they changed
    something, changed nothing, were refused or failed. Never edited afterwards.
    """

    class Action(models.TextChoices):
        METADATA_UPDATE = "metadata_update", "metadata edited"
        RESYNC = "resync", "resynced from Stripe"
        REPROCESS = "reprocess", "event reprocessed"
        FETCH_EVENTS = "fetch_events", "missed events fetched"

    class Result(models.TextChoices):
        DONE = "done", "done"
        UNCHANGED = "unchanged", "done, nothing changed"
        REFUSED = "refused", "refused"
        FAILED = "failed", "failed"

    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Kept as text too: the entry must still say who after the user is deleted.
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    object_type = models.CharField(max_length=64)
    stripe_id = models.CharField(max_length=255, db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # [[field, before, after], ...]: what a resync or an edit changed, in a person's terms.
    changes = models.JSONField(default=list, blank=True)
    result = models.CharField(max_length=16, choices=Result.choices)
    message = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True)
    job = models.ForeignKey(
        "ResyncJob", on_delete=models.CASCADE, null=True, blank=True, related_name="entries"
    )

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        indexes = [
            models.Index(fields=["at", "id"], name="audit_list"),
            models.Index(fields=["stripe_id", "-at"], name="audit_object"),
            models.Index(fields=["actor_name", "at"], name="audit_actor"),
        ]
        # The console's own permissions (billing.reprocess_inboundevent lives on InboundEvent).
        permissions = [
            ("edit_stripe_metadata", "Can edit Stripe metadata (not the link keys)"),
            ("edit_stripe_link_metadata", "Can edit the link keys order_id and user_id"),
            ("resync_stripe_object", "Can resync Stripe objects from Stripe"),
            ("manage_webhook_endpoints", "Can view and act on webhook endpoints"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.stripe_id} by {self.actor_name or '?'}"


class ResyncJob(models.Model):
    """A resync of many objects running in the background; its progress, for the admin."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        FINISHED = "finished", "finished"
        FAILED = "failed", "stopped by an error"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    object_type = models.CharField(max_length=64)
    stripe_ids = models.JSONField(default=list)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "resync job"

    def __str__(self) -> str:
        return f"resync of {self.total} {self.object_type} objects ({self.get_status_display()})"

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * self.done / self.total)

    @property
    def is_running(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)
