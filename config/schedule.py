"""The periodic tasks (``CELERY_BEAT_SCHEDULE``), run by ``celery worker --beat`` (make demo) or
a separate ``celery beat``: requeue due and lost events, count the webhook traffic by hour,
prune the delivery log."""

from __future__ import annotations


def beat_schedule(*, requeue_seconds: float) -> dict[str, dict]:
    return {
        "billing.requeue_events": {
            "task": "billing.requeue_events",
            "schedule": requeue_seconds,
            "options": {"expires": 60},
        },
        "billing.traffic_count": {
            "task": "billing.traffic_count",
            "schedule": 300.0,
            "options": {"expires": 300},
        },
        "billing.prune": {
            "task": "billing.prune",
            "schedule": 24 * 3600.0,
            "options": {"expires": 3600},
        },
    }
