"""The delivery log and refusal records kept for ``BILLING_WEBHOOK_RETENTION_DAYS``."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from billing.models import (
    DeliveryCount,
    WebhookDelivery,
    WebhookRejectCount,
    WebhookRejectSample,
)
from billing.webhooks import traffic

logger = logging.getLogger(__name__)


def deliveries_prune(*, older_than: timedelta) -> dict[str, int]:
    """Drop the delivery log and the refusal counters and samples past retention; the events
    and their outcomes stay. Returns how many rows of each went."""
    cutoff = timezone.now() - older_than
    traffic.traffic_count()  # the hours about to go are counted first
    return {
        "delivery_counts": DeliveryCount.objects.filter(hour__lt=cutoff).delete()[0],
        "deliveries": WebhookDelivery.objects.filter(received_at__lt=cutoff).delete()[0],
        "reject_counts": WebhookRejectCount.objects.filter(minute__lt=cutoff).delete()[0],
        "reject_samples": WebhookRejectSample.objects.filter(received_at__lt=cutoff).delete()[0],
    }
