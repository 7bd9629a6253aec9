"""The console's front page: what needs doing, how the webhooks are, and one search box.

Each app registers its work (``work_register``): a label, a count, the filtered list it links
to and the permission needed to see it. Billing registers events failed or retrying; orders
registers open flagged payments; refunds to approve and disputes to answer register the same
way. Every count is an indexed, capped count (``COUNT_CAP``), so the page costs the same at a
million orders; webhook health reads the hourly traffic counts and the per-minute refusal
counts, not the delivery log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncHour
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from djstripe.models import WebhookEndpoint

from billing.models import DeliveryCount, InboundEvent, WebhookDelivery, WebhookRejectCount
from billing.webhooks import traffic

COUNT_CAP = 1000
DAY = timedelta(hours=24)


@dataclass(frozen=True)
class Work:
    """One kind of work on the front page."""

    key: str
    label: str  # "flagged payments open"
    rows: Callable[[], QuerySet]  # the rows to count (an indexed filter)
    url: Callable[[], str]  # the list showing them
    permission: str
    urgent: bool = False  # shown first and marked when any


_WORK: list[Work] = []


def work_register(work: Work) -> None:
    _WORK[:] = [w for w in _WORK if w.key != work.key] + [work]


def capped_count(rows: QuerySet) -> int:
    """How many rows, counting at most ``COUNT_CAP + 1`` (a LIMIT subquery)."""
    return rows.order_by().values("pk")[: COUNT_CAP + 1].count()


@dataclass(frozen=True)
class WorkCount:
    work: Work
    count: int

    @property
    def text(self) -> str:
        return f"more than {COUNT_CAP:,}" if self.count > COUNT_CAP else f"{self.count:,}"


def work_for(request: HttpRequest) -> list[WorkCount]:
    """The work this person may see, with its counts: urgent work with something to do first."""
    shown = [
        WorkCount(work=w, count=capped_count(w.rows()))
        for w in _WORK
        if request.user.has_perm(w.permission)
    ]
    return sorted(shown, key=lambda c: (not (c.work.urgent and c.count), _WORK.index(c.work)))


# --- Webhook health -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointHealth:
    endpoint: WebhookEndpoint
    last_delivery: object  # datetime | None
    delivered: int  # events in the last 24 h
    refused: int  # refused POSTs in the last 24 h


def webhook_health() -> list[EndpointHealth]:
    """Per endpoint: its last delivery, events and refusals in the last day (the hours counted
    by ``traffic.traffic_count`` first, as ``front_context`` does)."""
    since = timezone.now() - DAY
    delivered = traffic.events_delivered(since=since, by="endpoint_uuid", count=False)
    refused = dict(
        WebhookRejectCount.objects.filter(minute__gte=since)
        .values_list("endpoint_uuid")
        .annotate(total=Sum("count"))
    )
    health = []
    for endpoint in WebhookEndpoint.objects.order_by("-created")[:20]:
        if (endpoint.stripe_data or {}).get("deleted"):
            continue
        last = (
            WebhookDelivery.objects.filter(endpoint_uuid=endpoint.djstripe_uuid)
            .order_by("-received_at")
            .values_list("received_at", flat=True)
            .first()
        )
        health.append(
            EndpointHealth(
                endpoint=endpoint,
                last_delivery=last,
                delivered=delivered.get(endpoint.djstripe_uuid, 0),
                refused=refused.get(endpoint.djstripe_uuid, 0),
            )
        )
    return health


# --- Events per hour, as a small SVG bar chart --------------------------------------------------


@dataclass(frozen=True)
class HourBar:
    hour: object  # datetime
    received: int
    failed: int
    x: int
    received_height: int
    failed_height: int

    @property
    def received_y(self) -> int:
        return CHART_HEIGHT - self.received_height

    @property
    def failed_y(self) -> int:
        return CHART_HEIGHT - self.failed_height


CHART_HEIGHT = 60
BAR_WIDTH = 14


def events_per_hour(*, hours: int = 24) -> list[HourBar]:
    """Events delivered and events failed per hour over the last ``hours`` (hourly counts and
    an index range of failed events: bounded whatever the volume)."""
    now = timezone.now()
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    received: dict = {}
    for hour, events in DeliveryCount.objects.filter(hour__gte=start).values_list("hour", "events"):
        received[hour] = received.get(hour, 0) + events
    current = now.replace(minute=0, second=0, microsecond=0)
    tail = traffic.events_delivered(since=current, by="endpoint_uuid", count=False)
    received[current] = max(received.get(current, 0), sum(tail.values()))
    failed = dict(
        InboundEvent.objects.filter(status=InboundEvent.Status.FAILED, created__gte=start)
        .annotate(hour=TruncHour("created"))
        .values_list("hour")
        .annotate(n=Count("pk"))
    )
    slots = [start + timedelta(hours=i) for i in range(hours)]
    peak = max([received.get(h, 0) for h in slots] + [failed.get(h, 0) for h in slots] + [1])
    return [
        HourBar(
            hour=h,
            received=received.get(h, 0),
            failed=failed.get(h, 0),
            x=i * (BAR_WIDTH + 2),
            received_height=round(CHART_HEIGHT * received.get(h, 0) / peak),
            failed_height=round(CHART_HEIGHT * failed.get(h, 0) / peak),
        )
        for i, h in enumerate(slots)
    ]


# --- Billing's own work -------------------------------------------------------------------------


def _events(*statuses: str) -> QuerySet:
    return InboundEvent.objects.filter(status__in=statuses)


def _events_list(status: str) -> str:
    return f"{reverse('admin:billing_inboundevent_changelist')}?status__exact={status}"


work_register(
    Work(
        key="events_failed",
        label="events failed",
        rows=lambda: _events(InboundEvent.Status.FAILED),
        url=lambda: _events_list("failed"),
        permission="billing.view_inboundevent",
        urgent=True,
    )
)
work_register(
    Work(
        key="events_retrying",
        label="events retrying",
        rows=lambda: _events(InboundEvent.Status.RETRYING),
        url=lambda: _events_list("retrying"),
        permission="billing.view_inboundevent",
    )
)


def front_context(request: HttpRequest) -> dict:
    """What the front page adds to the admin index."""
    may_see_webhooks = request.user.has_perm("billing.view_inboundevent")
    if may_see_webhooks:
        traffic.traffic_count()  # the hours not counted yet, once for both below
    return {
        "work": work_for(request),
        "webhook_health": webhook_health() if may_see_webhooks else [],
        "hours": events_per_hour() if may_see_webhooks else [],
        "chart": {"height": CHART_HEIGHT, "bar": BAR_WIDTH, "width": 24 * (BAR_WIDTH + 2)},
    }
