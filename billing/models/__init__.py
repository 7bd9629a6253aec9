"""The webhook inbox and the pipeline's own bookkeeping.

The Stripe objects themselves are mirrored in dj-stripe's models. These models record what
reached us (every delivery, accepted or not), what each event did when processed, and how
fresh the mirror of each object is (the ordering guard).
"""

from billing.models.console import AuditEntry, ResyncJob
from billing.models.destinations import EventDestination, PayloadStyle
from billing.models.inbox import (
    DeliveryCount,
    InboundEvent,
    RejectReason,
    WebhookDelivery,
    WebhookRejectCount,
    WebhookRejectSample,
    WebhookSecret,
)
from billing.models.mirror import ObjectSync
from billing.models.operators import (
    BackfillFailure,
    BackfillPage,
    BackfillProgress,
    BackfillRun,
    ReconcileReport,
)

__all__ = [
    "AuditEntry",
    "BackfillFailure",
    "BackfillPage",
    "BackfillProgress",
    "BackfillRun",
    "DeliveryCount",
    "EventDestination",
    "InboundEvent",
    "ObjectSync",
    "PayloadStyle",
    "ReconcileReport",
    "RejectReason",
    "ResyncJob",
    "WebhookDelivery",
    "WebhookRejectCount",
    "WebhookRejectSample",
    "WebhookSecret",
]
