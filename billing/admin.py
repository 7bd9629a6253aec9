"""Read-only admin for the webhook inbox. Changes go through services, gated by permission."""

from django.contrib import admin, messages
from django.utils.html import format_html

from billing import services
from billing.models import InboundEvent, ObjectSync, WebhookDelivery


class ReadOnlyAdmin(admin.ModelAdmin):
    """Logs and mirrored state are never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ("received_at", "outcome", "status_code", "endpoint", "remote_ip", "body_size")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(InboundEvent)
class InboundEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "object_id", "status", "attempts", "created", "received_at")
    list_filter = ("status", "type", "livemode")
    search_fields = ("id", "object_id", "request_id")
    date_hierarchy = "created"
    readonly_fields = [f.name for f in InboundEvent._meta.fields] + ["error"]
    exclude = ("last_error",)
    inlines = [DeliveryInline]
    actions = ["reprocess"]

    @admin.display(description="last error")
    def error(self, obj):
        return format_html("<pre>{}</pre>", obj.last_error) if obj.last_error else "-"

    @admin.action(description="Reprocess the selected events", permissions=["reprocess"])
    def reprocess(self, request, queryset):
        count = 0
        for event in queryset:
            if not event.is_final:
                services.event_reprocess(event=event)
                count += 1
        self.message_user(request, f"{count} event(s) queued for processing.", messages.SUCCESS)

    def has_reprocess_permission(self, request):
        return request.user.has_perm("billing.reprocess_inboundevent")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "outcome", "status_code", "event", "endpoint_uuid", "remote_ip")
    list_filter = ("outcome", "status_code")
    search_fields = ("event__id", "endpoint_uuid", "reason")
    list_select_related = ("event",)
    exclude = ("body",)
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields if f.name != "body"]


@admin.register(ObjectSync)
class ObjectSyncAdmin(ReadOnlyAdmin):
    list_display = ("stripe_id", "object_type", "fetch_started_at", "fetch_count", "deleted_at")
    list_filter = ("object_type",)
    search_fields = ("stripe_id",)


from billing import admin_ops  # noqa: E402, F401 - backfill runs, reconcile reports
