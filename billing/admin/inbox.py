"""Read-only admin for the webhook inbox and the console's records. Changes go through
services, gated by permission; the mirrored Stripe objects' pages are in ``admin_stripe``."""

import uuid
from http import HTTPStatus

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from billing import (
    display,
    permissions,
    selectors,
    types,
)
from billing.admin import views
from billing.admin.base import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    choices_filter,
    exact_search,
    json_block,
    object_link,
)
from billing.console import reprocess
from billing.models import (
    AuditEntry,
    InboundEvent,
    ObjectSync,
    ResyncJob,
    WebhookDelivery,
    WebhookRejectCount,
    WebhookRejectSample,
)
from billing.templatetags.console import masked
from billing.webhooks import registry

# Filters whose choices come from the code, not from ``SELECT DISTINCT`` over the table.
MirroredTypeFilter = choices_filter(
    "object_type", "object type", lambda: [(t, t.replace("_", " ")) for t in sorted(types.models())]
)
StatusCodeFilter = choices_filter(
    "status_code",
    "status code",
    lambda: [(str(code), f"{code} {HTTPStatus(code).phrase}") for code in (200, 400, 404, 413)],
)


def _list_defers(request, queryset, *fields: str):
    """``queryset`` without ``fields`` on a list (large columns only the object's page shows)."""
    view = getattr(request.resolver_match, "url_name", "") or ""
    return queryset if view.endswith("_change") else queryset.defer(*fields)


def _by_endpoint_uuid(queryset, term: str):
    term = term.strip()
    if not term:
        return queryset
    try:
        return exact_search(queryset, str(uuid.UUID(term)), ["endpoint_uuid"])
    except ValueError:
        return queryset.none()


class DeliveryInline(ReadOnlyInline):
    model = WebhookDelivery
    fields = ("received_at", "outcome", "status_code", "endpoint", "remote_ip", "body_size")
    readonly_fields = fields
    show_change_link = True

    def get_queryset(self, request):
        # The endpoint column would otherwise cost a query per delivery.
        return super().get_queryset(request).select_related("endpoint")


@admin.register(InboundEvent)
class InboundEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "object", "status", "attempts", "created", "received_at")
    list_filter = (
        "status",
        choices_filter("type", "type", lambda: [(t, t) for t in registry.subscribed_event_types()]),
        "livemode",
        "payload_style",
    )
    search_fields = ("id",)  # the box is shown; ``get_search_results`` does the finding
    search_help_text = "An event id (evt_...), the id of its object, or a request id (req_...)."
    readonly_fields = (
        "id",
        "type",
        "object",
        "status",
        "outcome",
        "attempts",
        "error",
        "api_version",
        "livemode",
        "created",
        "received_at",
        "last_attempt_at",
        "next_attempt_at",
        "claimed_at",
        "queued_at",
        "processed_at",
        "request_id",
        "idempotency_key",
        "payload_style",
        "snapshot_event",
        "payload_json",
        "fetched_event_json",
    )
    fieldsets = [
        (None, {"fields": ("id", "type", "object", "status", "outcome", "attempts", "error")}),
        (
            "When",
            {
                "fields": (
                    "created",
                    "received_at",
                    "last_attempt_at",
                    "next_attempt_at",
                    "claimed_at",
                    "queued_at",
                    "processed_at",
                )
            },
        ),
        ("Request", {"fields": ("api_version", "livemode", "request_id", "idempotency_key")}),
        ("Payload", {"fields": ("payload_style", "snapshot_event")}),
        (
            "Payload as delivered (secrets masked)",
            {"fields": ("payload_json",), "classes": ("collapse",)},
        ),
        (
            "Thin event: its full event, as fetched from Stripe",
            {"fields": ("fetched_event_json",), "classes": ("collapse",)},
        ),
    ]
    inlines = [DeliveryInline]
    actions = ["reprocess"]

    def get_queryset(self, request):
        # The payload and traceback can be large; only the event's own page shows them.
        return _list_defers(
            request, super().get_queryset(request), "payload", "last_error", "fetched_event"
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        field = (
            "pk"
            if term.startswith("evt_")
            else "request_id"
            if term.startswith("req_")
            else "object_id"
        )
        return exact_search(queryset, term, [field]), False

    @admin.display(description="object", ordering="object_id")
    def object(self, obj):
        return object_link(obj.object_type, obj.object_id)

    @admin.display(description="last error")
    def error(self, obj):
        return (
            format_html("<pre>{}</pre>", display.mask_secrets(obj.last_error))
            if obj.last_error
            else "-"
        )

    @admin.display(description="payload")
    def payload_json(self, obj):
        return json_block(obj.payload)

    @admin.display(description="fetched event")
    def fetched_event_json(self, obj):
        if obj.fetched_event is None:
            return "-" if obj.payload_style == "snapshot" else "not fetched (its object was)"
        return json_block(obj.fetched_event)

    @admin.action(description="Reprocess the selected events", permissions=["reprocess"])
    def reprocess(self, request, queryset):
        outcomes = reprocess.events_reprocess_selected(
            actor=request.user, event_ids=list(queryset.values_list("pk", flat=True))
        )
        views.report_reprocess(request, outcomes)

    def has_reprocess_permission(self, request):
        return request.user.has_perm(permissions.REPROCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "outcome", "status_code", "event", "endpoint_uuid", "remote_ip")
    list_filter = ("outcome", StatusCodeFilter)
    search_fields = ("event__id",)  # the box is shown; ``get_search_results`` does the finding
    search_help_text = "An event id (evt_...) or an endpoint uuid."
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def get_queryset(self, request):
        # The event's str() is its type and id: its payload is not loaded.
        queryset = super().get_queryset(request).select_related("event", "endpoint")
        return queryset.defer("event__payload", "event__last_error")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.startswith("evt_"):
            return exact_search(queryset, term, ["event_id"]), False
        return _by_endpoint_uuid(queryset, term), False


@admin.register(WebhookRejectCount)
class WebhookRejectCountAdmin(ReadOnlyAdmin):
    """Refused POSTs to webhook URLs, counted per endpoint, kind and minute."""

    list_display = ("minute", "endpoint_uuid", "reason", "status_code", "count")
    list_filter = ("reason", StatusCodeFilter)
    search_fields = ("endpoint_uuid",)
    search_help_text = "An endpoint uuid (the last part of its webhook URL)."
    readonly_fields = [f.name for f in WebhookRejectCount._meta.fields]

    def get_search_results(self, request, queryset, search_term):
        return _by_endpoint_uuid(queryset, search_term), False


@admin.register(WebhookRejectSample)
class WebhookRejectSampleAdmin(ReadOnlyAdmin):
    """The most recent refusals in detail (no bodies are kept)."""

    list_display = ("received_at", "status_code", "reason", "endpoint_uuid", "remote_ip", "detail")
    list_filter = ("reason", StatusCodeFilter)
    search_fields = ("endpoint_uuid",)
    search_help_text = "An endpoint uuid (the last part of its webhook URL)."
    readonly_fields = [f.name for f in WebhookRejectSample._meta.fields]

    def get_search_results(self, request, queryset, search_term):
        return _by_endpoint_uuid(queryset, search_term), False


@admin.register(ObjectSync)
class ObjectSyncAdmin(ReadOnlyAdmin):
    list_display = (
        "stripe_id",
        "object_type",
        "fetch_started_at",
        "synced_at",
        "fetch_count",
        "deleted_at",
    )
    list_filter = (MirroredTypeFilter,)
    search_fields = ("stripe_id",)
    search_help_text = "A Stripe id."
    exclude = ("snapshot",)
    readonly_fields = (
        "stripe_id",
        "object",
        "object_type",
        "fetch_started_at",
        "synced_at",
        "fetch_count",
        "deleted_at",
        "snapshot_json",
    )

    def get_queryset(self, request):
        # The snapshot can be large; only the object's own page shows it.
        return _list_defers(request, super().get_queryset(request), "snapshot")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        return (exact_search(queryset, term, ["stripe_id"]) if term else queryset), False

    @admin.display(description="console page")
    def object(self, obj):
        return object_link(obj.object_type, obj.stripe_id)

    @admin.display(description="snapshot (secrets masked)")
    def snapshot_json(self, obj):
        return json_block(obj.snapshot)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor_name", "action", "object", "result", "message")
    list_filter = ("action", "result", MirroredTypeFilter)
    search_fields = ("stripe_id",)
    search_help_text = "A Stripe id, or a username."
    readonly_fields = (
        "at",
        "actor_name",
        "action",
        "object",
        "result",
        "message",
        "job",
        "idempotency_key",
        "diff",
        "before_json",
        "after_json",
    )
    fields = readonly_fields
    list_select_related = ()

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        field = "stripe_id" if selectors.object_type_for_id(term) else "actor_name"
        return exact_search(queryset, term, [field]), False

    @admin.display(description="object", ordering="stripe_id")
    def object(self, obj):
        return object_link(obj.object_type, obj.stripe_id)

    @admin.display(description="what changed")
    def diff(self, obj):
        if not obj.changes:
            return "-"
        return format_html(
            '<table class="console-diff"><tr><th>field</th><th>before</th><th>after</th></tr>{}</table>',
            format_html_rows(obj.changes),
        )

    @admin.display(description="before")
    def before_json(self, obj):
        return json_block(obj.before)

    @admin.display(description="after")
    def after_json(self, obj):
        return json_block(obj.after)


def format_html_rows(changes) -> str:
    return format_html_join(
        "",
        '<tr><td>{}</td><td class="before">{}</td><td class="after">{}</td></tr>',
        ((field, masked(before, field), masked(after, field)) for field, before, after in changes),
    )


@admin.register(ResyncJob)
class ResyncJobAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "created_by", "object_type", "progress", "status")
    list_filter = ("status", MirroredTypeFilter)
    list_select_related = ("created_by",)
    change_form_template = "admin/billing/resyncjob/change_form.html"
    readonly_fields = (
        "created_at",
        "created_by",
        "object_type",
        "status",
        "progress",
        "started_at",
        "finished_at",
        "error",
    )
    fields = readonly_fields

    @admin.display(description="progress")
    def progress(self, obj):
        return (
            f"{obj.done} of {obj.total} done ({obj.percent} %): {obj.changed} changed, "
            f"{obj.failed} failed"
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["audits"] = list(
                obj.entries.order_by("-result", "-at")[: selectors.HISTORY_LIMIT]
            )
            context["job"] = obj
        return super().render_change_form(request, context, add, change, form_url, obj)
