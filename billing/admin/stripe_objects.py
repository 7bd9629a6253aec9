"""Read-only admin pages for the mirrored Stripe objects: the product's own, not dj-stripe's.

dj-stripe's model admins are unregistered here: they render ``default_api_key`` in full,
expose action views that check only ``is_staff`` (cancel a subscription, sync from Stripe),
let mirror rows be edited by hand, and fail on several pages. Each page here shows what
support needs for its type, links the order and user through the metadata link keys, and
offers the console's actions (Edit Stripe metadata, Resync from Stripe, Reprocess) to those
allowed. Changes go to Stripe through the console's services (``billing.console``); the mirror is never edited here.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Q
from django.http import Http404
from django.urls import path
from django.utils.html import format_html, format_html_join

from billing import display, metadata, permissions, selectors
from billing.admin import metadata_form, views
from billing.admin.base import (
    STRIPE_ID,
    ConsoleList,
    FoundByTypedId,
    ReadOnly,
    admin_link,
    facts_table,
    json_block,
    order_link,
)
from billing.stripe_api import StripeAPIError


class StatusFilter(admin.SimpleListFilter):
    """Filter on Stripe's own ``status``: fixed choices (the type's statuses), and a lookup
    indexed with the list's ordering (migration billing.0009)."""

    title = "status"
    parameter_name = "status"

    def __init__(self, request, params, model, model_admin):
        self.status_field = model_admin.status_field
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        return [(value, value.replace("_", " ")) for value in model_admin.statuses]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.status_field: self.value()})
        return queryset


def _target_link(target: metadata.LinkTarget) -> str:
    if not target.admin_url:  # a page its reader may not open
        return format_html("{}", target.label)
    return format_html('<a href="{}">{}</a>', target.admin_url, target.label)


class StripeObjectList(ChangeList):
    """A page of Stripe objects, each without ``order_id`` in its metadata told the orders it
    is tied to (a subscription's charges, through their invoice), as its own page tells them:
    one query for the page, whatever its length."""

    def get_results(self, request):
        super().get_results(request)
        if "order" not in self.list_display:
            return
        untagged = [obj for obj in self.result_list if not (obj.metadata or {}).get("order_id")]
        tied = metadata.tied_values("order_id", [obj.id for obj in untagged])
        for obj in untagged:
            obj._console_tied_orders = tied.get(obj.id, [])


class StripeObjectAdmin(FoundByTypedId, ReadOnly, ConsoleList, admin.ModelAdmin):
    """The shared page of a mirrored Stripe object. Subclasses set the type and its facts."""

    object_type = ""
    statuses: tuple[str, ...] = ()
    change_form_template = "admin/billing/stripe_object/change_form.html"
    list_display = (
        "stripe_id",
        "status_words",
        "amount_formatted",
        "customer_link",
        "order",
        "created_in_stripe",
    )
    list_display_links = ("stripe_id",)
    search_fields = ("id",)  # the box is shown; ``get_search_results`` does the finding
    search_help_text = "A Stripe id, or an order id (ord_...) to find its objects."
    # Another object's type -> the column (or indexed JSON path) holding its id, which a
    # search by that object's id matches.
    id_fields: dict[str, str] = {}
    # Where Stripe's status is: the data (dj-stripe 2.11 keeps most fields there) or a column.
    status_field = "stripe_data__status"
    ordering = ("-created", "-djstripe_id")
    actions = ["resync_selected"]
    summary_fields = (
        "stripe_id",
        "status_words",
        "amount_formatted",
        "customer_link",
        "linked_order",
        "linked_user",
        "created_in_stripe",
        "last_synced",
        "mode",
        "dashboard",
    )

    # --- Read-only: changes go to Stripe first, through services ---

    def has_resync_permission(self, request) -> bool:
        return request.user.has_perms(permissions.resync_permissions(object_type=self.object_type))

    def may_edit_metadata(self, request) -> bool:
        return request.user.has_perms(
            permissions.metadata_permissions(object_type=self.object_type)
        )

    # --- Finding rows: by Stripe id in the URL, so links need no lookup ---

    def object_find(self, request, object_id, from_field=None):
        if object_id and not object_id.isdigit():
            return self.get_queryset(request).filter(id=object_id).first()
        return super().object_find(request, object_id, from_field)

    def get_search_results(self, request, queryset, search_term):
        """Exact, indexed matches only: an order's objects through its references, an id, the
        objects holding an id of another type, or the words ``search_words`` knows."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.startswith("ord_"):
            return queryset.filter(id__in=metadata.tied_stripe_ids("order_id", term)), False
        if STRIPE_ID.match(term):
            query = Q(id=term)
            if field := self.id_fields.get(selectors.object_type_for_id(term) or ""):
                query |= Q(**{field: term})
            return queryset.filter(query), False
        return self.search_words(request, queryset, term), False

    def search_words(self, request, queryset, term: str):
        """Rows found by a term that is no id (none, unless the type says how)."""
        return queryset.none()

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": self.summary_fields}),
            ("Details", {"fields": ("facts", "related")}),
            ("Raw data from Stripe", {"fields": ("raw",), "classes": ("collapse",)}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [*self.summary_fields, "facts", "related", "raw"]

    # --- Columns and fields (all read from the row; no query per row) ---

    def data(self, obj) -> dict[str, Any]:
        return obj.stripe_data or {}

    @admin.display(description="Stripe id", ordering="id")
    def stripe_id(self, obj) -> str:
        return obj.id

    # Named apart from the model's own columns: Django shows a field before an admin method.
    @admin.display(description="status")
    def status_words(self, obj) -> str:
        return display.status_text(self.object_type, self.data(obj))

    @admin.display(description="amount")
    def amount_formatted(self, obj) -> str:
        return display.amount_text(self.object_type, self.data(obj)) or "-"

    @admin.display(description="customer")
    def customer_link(self, obj) -> str:
        customer = obj.id if self.object_type == "customer" else self.data(obj).get("customer")
        return admin_link("customer", display.stripe_id(customer))

    def get_changelist(self, request, **kwargs):
        return StripeObjectList

    @admin.display(description="order")
    def order(self, obj) -> str:
        linked = (obj.metadata or {}).get("order_id")
        if linked:
            return order_link(linked)
        tied = getattr(obj, "_console_tied_orders", None) or []
        return format_html_join(", ", "{}", ((order_link(p),) for p in tied)) or "-"

    @admin.display(description="linked order")
    def linked_order(self, obj) -> str:
        return self._link_cell(obj, "order_id")

    @admin.display(description="linked user")
    def linked_user(self, obj) -> str:
        return self._link_cell(obj, "user_id")

    def _link_cell(self, obj, key: str) -> str:
        value = (obj.metadata or {}).get(key)
        if not value:
            tied = metadata.tied_targets(key, obj.id)
            if not tied:
                return "-"
            return format_html(
                '{} <span class="help">(no {} in its metadata; tied through related objects)</span>',
                format_html_join(", ", "{}", ((_target_link(t),) for t in tied)),
                key,
            )
        targets = self._targets(obj)
        target = targets.get(key)
        if target is None:
            return format_html(
                '<span class="console-warning">{}={} names no existing row</span>', key, value
            )
        return _target_link(target)

    def _targets(self, obj) -> dict[str, metadata.LinkTarget | None]:
        # Resolved once per page (two queries at most), reused by both fields and the context.
        if getattr(obj, "_console_targets", None) is None:
            obj._console_targets = metadata.link_targets(obj.metadata or {})
        return obj._console_targets

    @admin.display(description="created in Stripe", ordering="created")
    def created_in_stripe(self, obj) -> str:
        return display.when(obj.created)

    @admin.display(description="last synced from Stripe")
    def last_synced(self, obj) -> str:
        state = selectors.sync_states(stripe_ids=[obj.id]).get(obj.id)
        return display.when(selectors.last_synced(row=obj, state=state))

    @admin.display(description="mode")
    def mode(self, obj) -> str:
        return "live" if obj.livemode else "test" if obj.livemode is False else "unknown"

    @admin.display(description="Stripe Dashboard")
    def dashboard(self, obj) -> str:
        url = display.dashboard_url(self.object_type, obj.id, obj.livemode)
        if not url:
            return "-"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener noreferrer">View in Stripe Dashboard</a>',
            url,
        )

    @admin.display(description="facts")
    def facts(self, obj) -> str:
        return facts_table(self.type_facts(self.data(obj), obj))

    def type_facts(self, data: dict[str, Any], obj) -> list[tuple[str, Any]]:
        return [("description", data.get("description"))]

    @admin.display(description="related objects")
    def related(self, obj) -> str:
        data = self.data(obj)
        rows = []
        for field in (*display.PURCHASE_FIELDS, "product", "default_price"):
            stripe_id = display.stripe_id(data.get(field))
            object_type = selectors.object_type_for_id(stripe_id or "")
            if stripe_id:
                rows.append((field.replace("_", " "), admin_link(object_type or "", stripe_id)))
        return facts_table(rows)

    @admin.display(description="raw data (secrets masked)")
    def raw(self, obj) -> str:
        return json_block(self.data(obj))

    # --- The page: summary, metadata, console log, event history, actions ---

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(views.object_context(self, request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/metadata/",
                wrap(metadata_form.MetadataEditView.as_view(model_admin=self)),
                name="{}_{}_metadata".format(*info),
            ),
            path(
                "<path:object_id>/resync/",
                wrap(views.ResyncView.as_view(model_admin=self)),
                name="{}_{}_resync".format(*info),
            ),
            path(
                "<path:object_id>/reprocess/",
                wrap(views.ReprocessView.as_view(model_admin=self)),
                name="{}_{}_reprocess".format(*info),
            ),
            path(
                "<path:object_id>/fetch_events/",
                wrap(views.FetchEventsView.as_view(model_admin=self)),
                name="{}_{}_fetch_events".format(*info),
            ),
            # dj-stripe's action views lived here; make sure nothing answers in their place.
            path("action/<path:rest>", wrap(self.gone)),
            *super().get_urls(),
        ]

    def gone(self, request, rest: str):
        raise Http404("dj-stripe's admin actions are not available.")

    # --- Changelist action ---

    @admin.action(description="Resync from Stripe", permissions=["resync"])
    def resync_selected(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        try:
            outcome = views.resync_many(self, request, ids)
        except StripeAPIError as exc:
            self.message_user(request, views.stripe_error_text(exc), messages.ERROR)
            return None
        return outcome

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
