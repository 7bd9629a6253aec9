"""Digital goods delivered, as records: how often each order item's file was downloaded.

Imported by ``orders.models`` (the app's models module); it names ``OrderItem`` by its label,
so neither module imports the other's names. Written only by ``orders.downloads``.
"""

from __future__ import annotations

from django.db import models


class ItemDownload(models.Model):
    """The downloads of one order item's file: a counter, and when it was first and last
    fetched (support answers "I never got it" from these)."""

    item = models.OneToOneField(
        "orders.OrderItem", on_delete=models.CASCADE, related_name="download"
    )
    count = models.PositiveIntegerField(default=0)
    first_at = models.DateTimeField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "download"

    def __str__(self) -> str:
        return f"item {self.item_id}: downloaded {self.count} times"
