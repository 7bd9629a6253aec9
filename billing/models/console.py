"""What the support console records: the audit log and resync jobs."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """One action taken from the support console on a Stripe object: who, when, what, result.

    Metadata edits, resyncs and reprocessing each leave one entry, whether they changed
    something, changed nothing, were refused or failed; so do a reset of a staff member's
    two-factor (``orders.login.two_factor``), and refunds, refund requests and their decisions,
    and notes on disputes. Never edited afterwards.
    """

    class Action(models.TextChoices):
        METADATA_UPDATE = "metadata_update", "metadata edited"
        RESYNC = "resync", "resynced from Stripe"
        REPROCESS = "reprocess", "event reprocessed"
        FETCH_EVENTS = "fetch_events", "missed events fetched"
        # Not about a Stripe object: the account's username stands in the id column.
        TWO_FACTOR_RESET = "two_factor_reset", "staff two-factor reset"
        # The shop's money after the sale (``orders.services.refund_console``, ``disputes``):
        # on the charge refunded (or the refund made), the dispute noted.
        REFUND = "refund", "refund issued"
        REFUND_REQUEST = "refund_request", "refund requested for approval"
        REFUND_APPROVE = "refund_approve", "refund request approved"
        REFUND_REJECT = "refund_reject", "refund request rejected"
        DISPUTE_NOTE = "dispute_note", "dispute noted"
        # An order's payment, by the Stripe id it carries (its session, invoice or intent).
        PAYMENT_RESOLVE = "payment_resolve", "flagged payment resolved"

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
