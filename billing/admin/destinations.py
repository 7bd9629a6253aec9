"""Event destinations (API v2: thin or snapshot events) in the console: read-only, as Stripe
and ``stripe_webhooks sync`` left them, and a ping that shows the round trip."""

from __future__ import annotations

from django.contrib import admin, messages

from billing import display, permissions, stripe_api
from billing.admin.base import ReadOnlyAdmin
from billing.models import EventDestination
from billing.webhooks import destinations

PING_TIMEOUT = 5.0  # seconds a ping from the console waits for its arrival


@admin.register(EventDestination)
class EventDestinationAdmin(ReadOnlyAdmin):
    list_display = ("id", "event_payload", "status", "url", "created")
    list_filter = ("event_payload", "status")
    fields = (
        "id",
        "event_payload",
        "status",
        "url",
        "uuid",
        "enabled_events",
        "snapshot_api_version",
        "secret_masked",
        "tolerance",
        "name",
        "created",
        "synced_at",
    )
    readonly_fields = fields
    actions = ["ping"]

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) and request.user.has_perm(
            permissions.MANAGE_WEBHOOK_ENDPOINTS
        )

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_ping_permission(self, request) -> bool:
        return request.user.has_perm(permissions.MANAGE_WEBHOOK_ENDPOINTS)

    @admin.display(description="signing secret")
    def secret_masked(self, obj) -> str:
        return display.mask(obj.secret) or "-"

    @admin.action(description="Ping the selected destinations (round trip)", permissions=["ping"])
    def ping(self, request, queryset):
        for destination in queryset.only("id"):
            try:
                sent = destinations.event_destination_ping(destination_id=destination.id)
            except stripe_api.StripeAPIError as exc:
                self.message_user(request, f"{destination.id}: {exc.message}", messages.ERROR)
                continue
            ping = destinations.ping_wait(sent, timeout=PING_TIMEOUT)
            if ping.received_at is None:
                self.message_user(
                    request,
                    f"{destination.id}: {sent.event_id} did not arrive within "
                    f"{PING_TIMEOUT:g} s; check that its URL reaches this deployment.",
                    messages.WARNING,
                )
                continue
            self.message_user(
                request,
                f"{destination.id}: round trip {ping.round_trip_ms:.0f} ms ({ping.event_id}, "
                f"{ping.status}).",
                messages.SUCCESS,
            )
