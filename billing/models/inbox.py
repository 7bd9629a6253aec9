"""The webhook inbox: every event stored once, every delivery, refusals counted, traffic by the
hour, rotated-out signing secrets."""

from django.db import models
from django.utils import timezone

from billing.models.destinations import PayloadStyle


class InboundEvent(models.Model):
    """One Stripe event, stored once whatever the number of deliveries or endpoints."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        PROCESSING = "processing", "processing (claimed by a worker)"
        RETRYING = "retrying", "retrying after an error"
        PROCESSED = "processed", "processed"
        IGNORED = "ignored", "ignored (no handler)"
        FAILED = "failed", "failed (retries exhausted)"
        DUPLICATE = "duplicate", "duplicate (the same change, applied by its twin)"

    FINAL = (Status.PROCESSED, Status.IGNORED, Status.DUPLICATE)

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
    # Thin events (API v2 event destinations): the notification is the payload; the full v2
    # event is fetched only when needed (a handler reads its changes, or its twin is sought).
    payload_style = models.CharField(
        max_length=8, choices=PayloadStyle.choices, default=PayloadStyle.SNAPSHOT
    )
    snapshot_event = models.CharField(
        max_length=255,
        blank=True,
        help_text="A thin event about a v1 object: the snapshot event it stands for (its twin)",
    )
    fetched_event = models.JSONField(
        null=True, blank=True, help_text="A thin event's full v2 event, when it was fetched"
    )
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
            # A snapshot event's thin twin (only thin events have one: a small index).
            models.Index(
                fields=["snapshot_event"],
                name="inbound_event_twin",
                condition=~models.Q(snapshot_event=""),
            ),
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
