"""Requeue stored events: failed ones (after a fix), or ones no task is working on.

The periodic task ``billing.requeue_events`` (Celery beat) already does ``--pending`` every
30 s; the command is for operators (and cron where no beat runs).
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime, parse_duration

from billing.models import InboundEvent
from billing.webhooks import queue


def parse_since(value: str):
    """An ISO time (2026-11-01T00:00Z) or an age (3 days, 12:00:00, P2D)."""
    moment = parse_datetime(value)
    if moment is not None:
        return moment if moment.tzinfo else timezone.make_aware(moment)
    if value.endswith(("d", "h", "m")) and value[:-1].isdigit():
        unit = {"d": "days", "h": "hours", "m": "minutes"}[value[-1]]
        return timezone.now() - timedelta(**{unit: int(value[:-1])})
    age = parse_duration(value)
    if age is None:
        raise CommandError(f"--since: {value!r} is neither a time nor a duration (e.g. 2d, 6h)")
    return timezone.now() - age


class Command(BaseCommand):
    help = "Queue stored Stripe events for processing again (failed ones by default)."

    def add_arguments(self, parser):
        parser.add_argument("--failed", action="store_true", help="events whose retries ran out")
        parser.add_argument(
            "--pending",
            action="store_true",
            help=(
                "events due and not queued recently (a lost task), or claimed by a worker "
                "past the lease (a dead worker); events waiting for their retry are left alone"
            ),
        )
        parser.add_argument("--since", help="only events created since (time or age: 2d, 6h)")
        parser.add_argument("--type", action="append", dest="types", help="event type; repeatable")

    def handle(self, *args, failed, pending, since, types, **options):
        if not failed and not pending:
            failed = True
        since_at = parse_since(since) if since else None
        count = 0
        if failed:
            count += queue.events_reprocess(
                statuses=(InboundEvent.Status.FAILED,), since=since_at, types=types
            )
        if pending:
            count += queue.events_requeue(since=since_at, types=types)
        self.stdout.write(self.style.SUCCESS(f"{count} event(s) queued for processing."))
