"""Refused deliveries: anyone can POST to a webhook URL, so a refusal costs one upsert of a count
per endpoint, kind and minute, and a few are kept in detail (never a body), bounded in number."""

from __future__ import annotations

import logging
import uuid

from django.db import connection
from django.db.models import Q
from django.utils import timezone
from djstripe.models import WebhookEndpoint

from billing.models import RejectReason, WebhookRejectCount, WebhookRejectSample

logger = logging.getLogger(__name__)

# Refused deliveries kept in detail: the first few of each kind per endpoint and minute, and
# at most this many in all (the newest).
REJECT_SAMPLES = 100
REJECT_SAMPLES_PER_MINUTE = 5
# Refusals for endpoints that do not exist: counted together, a few kept in detail apart.
UNKNOWN_ENDPOINTS = uuid.UUID(int=0)
UNKNOWN_ENDPOINT_SAMPLES = 20


def delivery_reject(
    *,
    endpoint_uuid: uuid.UUID,
    status: int,
    code: str,
    reason: str,
    body_size: int,
    remote_ip: str | None,
) -> None:
    """Count a refused delivery (endpoint, kind, minute); keep a few in detail, never a body.

    Anyone can POST to a webhook URL: a refusal costs one upsert, and the detailed samples
    are bounded (``REJECT_SAMPLES_PER_MINUTE`` of a kind per endpoint and minute,
    ``REJECT_SAMPLES`` in all).
    """
    now = timezone.now()
    minute = now.replace(second=0, microsecond=0)
    # Anyone can make up endpoint uuids: refusals for unknown ones share one counter (a
    # disabled endpoint of ours keeps its own).
    unknown = (
        code == RejectReason.UNKNOWN_ENDPOINT
        and not WebhookEndpoint.objects.filter(djstripe_uuid=endpoint_uuid).exists()
    )
    counted_as = UNKNOWN_ENDPOINTS if unknown else endpoint_uuid
    table = connection.ops.quote_name(WebhookRejectCount._meta.db_table)
    # The table name comes from the model; every value is a parameter.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (endpoint_uuid, reason, status_code, minute, count) "  # noqa: S608
            "VALUES (%s, %s, %s, %s, 1) ON CONFLICT (endpoint_uuid, reason, minute) "
            f"DO UPDATE SET count = {table}.count + 1 RETURNING count",
            [
                WebhookRejectCount._meta.get_field("endpoint_uuid").get_db_prep_save(
                    counted_as, connection
                ),
                code,
                status,
                WebhookRejectCount._meta.get_field("minute").get_db_prep_save(minute, connection),
            ],
        )
        (count,) = cursor.fetchone()
    if count <= REJECT_SAMPLES_PER_MINUTE:
        WebhookRejectSample.objects.create(
            endpoint_uuid=endpoint_uuid,
            reason=code,
            detail=reason[:500],
            status_code=status,
            received_at=now,
            remote_ip=remote_ip,
            body_size=body_size,
        )
        _samples_trim(unknown=code == RejectReason.UNKNOWN_ENDPOINT)
    logger.warning("webhook delivery rejected (%s) on %s: %s", status, endpoint_uuid, reason)


def _samples_trim(*, unknown: bool) -> None:
    """Keep the newest samples of each class: refusals on unknown endpoints (anyone's noise)
    are kept apart, so they never push a real endpoint's refusals out."""
    kept, limit = (
        (Q(reason=RejectReason.UNKNOWN_ENDPOINT), UNKNOWN_ENDPOINT_SAMPLES)
        if unknown
        else (~Q(reason=RejectReason.UNKNOWN_ENDPOINT), REJECT_SAMPLES)
    )
    samples = WebhookRejectSample.objects.filter(kept)
    oldest_kept = samples.order_by("-pk").values_list("pk", flat=True)[limit - 1 : limit].first()
    if oldest_kept is not None:
        samples.filter(pk__lt=oldest_kept).delete()
