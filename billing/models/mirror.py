"""The ordering guard's memory of each mirrored object."""

from django.db import models


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
