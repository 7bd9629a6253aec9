"""The webhooks' traffic, counted per hour: events each endpoint delivered and their API
versions, read at one cost whatever the shop's volume.

Pages that show traffic (the API versions page, ``stripe_webhooks list``) would otherwise count
a month of deliveries on every load. Deliveries of each whole hour are counted once, into
``DeliveryCount`` rows (a month is at most 720 rows per endpoint and version); a reader adds the
deliveries since the last whole hour counted, a short range of the delivery log's index. The
periodic task counts as hours end; every reader counts first too, so the figures are exact
without beat (only hours that ended ``LAG`` ago are counted: a delivery's transaction commits
within that).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Max
from django.db.models.functions import TruncHour
from django.utils import timezone

from billing.models import DeliveryCount, WebhookDelivery

LAG = timedelta(seconds=60)
HOUR = timedelta(hours=1)
_LOCK = 0x7E4F1C  # the advisory lock of the one counting at a time (PostgreSQL)


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _counted_until() -> datetime | None:
    """The end of the last hour counted (None: nothing counted yet)."""
    last = DeliveryCount.objects.aggregate(last=Max("hour"))["last"]
    return None if last is None else last + HOUR


def _deliveries(since: datetime | None, until: datetime | None):
    rows = WebhookDelivery.objects.filter(event__isnull=False)
    if since is not None:
        rows = rows.filter(received_at__gte=since)
    if until is not None:
        rows = rows.filter(received_at__lt=until)
    return rows


def traffic_count(*, now: datetime | None = None) -> int:
    """Count the whole hours not counted yet; return how many rows that added."""
    until = _hour((now or timezone.now()) - LAG)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])
        since = _counted_until()
        if since is not None and since >= until:
            return 0
        grouped = (
            _deliveries(since, until)
            .annotate(at=TruncHour("received_at"))
            .values("at", "endpoint_uuid", "event__api_version")
            .annotate(events=Count("event", distinct=True))
        )
        rows = [
            DeliveryCount(
                hour=row["at"],
                endpoint_uuid=row["endpoint_uuid"],
                api_version=row["event__api_version"] or "",
                events=row["events"],
            )
            for row in grouped
        ]
        DeliveryCount.objects.bulk_create(rows, ignore_conflicts=True)
        return len(rows)


def events_delivered(*, since: datetime, by: str, count: bool = True) -> Counter:
    """Distinct events delivered from the hour of ``since`` on, by ``"endpoint_uuid"`` or
    ``"api_version"``: the counted hours, and the deliveries since the last of them.
    ``count=False``: the caller ran ``traffic_count`` for this page already."""
    if count:
        traffic_count()
    start = _hour(since)
    counts: Counter = Counter()
    for key, events in DeliveryCount.objects.filter(hour__gte=start).values_list(by, "events"):
        counts[key] += events
    field = "event__api_version" if by == "api_version" else by
    tail = _deliveries(max(_counted_until() or start, start), None)
    for key, events in tail.values_list(field).annotate(n=Count("event", distinct=True)):
        counts[key or ""] += events
    return counts
