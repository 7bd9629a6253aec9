"""Celery tasks of the Stripe boundary. Tasks are thin: they call one service and report."""

import logging
import traceback
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from billing import events

logger = logging.getLogger(__name__)


@shared_task(name="billing.echo")
def echo(value: str) -> str:
    """Round-trip probe used to prove a worker consumes from the broker."""
    return value


def retry_delay(attempt: int) -> float:
    """Exponential backoff: base, 2x base, 4x base ... capped at an hour."""
    return min(settings.BILLING_EVENT_RETRY_BASE_SECONDS * 2 ** (attempt - 1), 3600.0)


@shared_task(bind=True, name="billing.process_event", max_retries=None, acks_late=True)
def process_event(self, event_id: str) -> str:
    try:
        return events.process(event_id)
    except Exception as exc:
        attempt = self.request.retries + 1
        final = attempt >= settings.BILLING_EVENT_MAX_ATTEMPTS
        delay = retry_delay(attempt)
        events.failure_record(
            event_id=event_id,
            error=traceback.format_exc(),
            final=final,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
        )
        if final:
            logger.error("event %s failed after %s attempts: %s", event_id, attempt, exc)
            return "failed"
        logger.warning(
            "event %s attempt %s failed (%s); retry in %.1fs", event_id, attempt, exc, delay
        )
        raise self.retry(exc=exc, countdown=delay) from exc


@shared_task(name="billing.resync_job", acks_late=True)
def resync_job(job_id: int) -> str:
    """A support console resync of many objects (progress on the job's admin page)."""
    from billing import services

    return services.resync_job_run(job_id=job_id).status
