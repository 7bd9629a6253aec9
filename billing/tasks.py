"""Celery tasks of the Stripe boundary. Tasks are thin: they call one service and report."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from billing.console import resync
from billing.webhooks import processing, queue, retention, traffic

logger = logging.getLogger(__name__)


@shared_task(name="billing.process_event", acks_late=True)
def process_event(event_id: str) -> str:
    """One attempt at one event. Retries are the event's own (``attempts``,
    ``next_attempt_at``), queued by ``processing.process``; never Celery's."""
    return processing.process(event_id)


@shared_task(name="billing.requeue_events", acks_late=True)
def requeue_events() -> int:
    """Beat, every BILLING_REQUEUE_INTERVAL_SECONDS: queue events that are due or stuck."""

    return queue.events_requeue()


@shared_task(name="billing.prune", acks_late=True)
def prune() -> dict[str, int]:
    """Beat, daily: the delivery log and refusal counters past BILLING_WEBHOOK_RETENTION_DAYS."""

    pruned = retention.deliveries_prune(
        older_than=timedelta(days=settings.BILLING_WEBHOOK_RETENTION_DAYS)
    )
    logger.info("pruned webhook records past retention: %s", pruned)
    return pruned


@shared_task(name="billing.traffic_count", acks_late=True)
def traffic_count() -> int:
    """Beat, every few minutes: count the webhooks' traffic of the hours that ended."""
    return traffic.traffic_count()


@shared_task(name="billing.resync_job", acks_late=True)
def resync_job(job_id: int) -> str:
    """A support console resync of many objects (progress on the job's admin page)."""

    return resync.resync_job_run(job_id=job_id).status
