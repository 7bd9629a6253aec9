"""Event destinations (Stripe API v2) this deployment receives events at.

dj-stripe mirrors v1 webhook endpoints (``djstripe.WebhookEndpoint``) but has no model for v2
objects, so a destination is kept here: the local uuid in its URL, its signing secret (which
Stripe returns once, on creation), and Stripe's answer as it last read it.
"""

import uuid

from django.db import models
from django.utils import timezone


class PayloadStyle(models.TextChoices):
    """How Stripe sends an event: the object's versioned snapshot, or a thin notification."""

    SNAPSHOT = "snapshot", "snapshot"
    THIN = "thin", "thin"


class EventDestination(models.Model):
    """One event destination of type ``webhook_endpoint``, as Stripe last answered for it."""

    class Status(models.TextChoices):
        ENABLED = "enabled", "enabled"
        DISABLED = "disabled", "disabled"
        DELETED = "deleted", "deleted (retired)"

    id = models.CharField(primary_key=True, max_length=255, help_text="Stripe id (ed_...)")
    uuid = models.UUIDField(
        unique=True, default=uuid.uuid4, help_text="The uuid in its URL (/stripe/webhook/<uuid>/)"
    )
    name = models.CharField(max_length=255, blank=True)
    url = models.CharField(max_length=2048, blank=True)
    event_payload = models.CharField(
        max_length=8, choices=PayloadStyle.choices, default=PayloadStyle.THIN
    )
    snapshot_api_version = models.CharField(
        max_length=64, blank=True, help_text="Snapshot destinations only: their events' version"
    )
    enabled_events = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ENABLED)
    # Stripe shows the signing secret in the create answer only; it is kept here alone, never
    # in ``stripe_data``.
    secret = models.CharField(max_length=255, blank=True)
    tolerance = models.PositiveIntegerField(
        default=300, help_text="Seconds a signature's timestamp may be off, either way"
    )
    stripe_data = models.JSONField(default=dict, help_text="Stripe's answer, secret left out")
    created = models.DateTimeField(null=True, blank=True, help_text="When Stripe created it")
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "id"]

    def __str__(self) -> str:
        return f"{self.id} ({self.event_payload}, {self.status})"
