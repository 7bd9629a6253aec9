"""What every page of the support console shares: the read-only base of the console's admins,
lists that cost the same on a table of a thousand rows or ten million, and links between pages.

- Counting: Django's paginator counts every row a list matches, a scan of the table on an
  unfiltered list. ``CappedPaginator`` counts up to ``COUNT_CAP`` rows and then says "more
  than"; the pages past it are not offered (a search or a filter narrows the list instead).
- Filters: a field filter lists its choices with ``SELECT DISTINCT`` over the whole table.
  ``ChoicesFilter`` takes its choices from the code (a registry, a fixed list).
- Searching: the admin's ``=field`` search compiles to ``UPPER(field) = UPPER(term)``, which no
  index serves. ``exact_search`` matches ids exactly, as they are stored.
- Ordering: each list's ordering has an index (the models' ``Meta.indexes``, and migration
  ``billing.0009`` for dj-stripe's tables).
- Read-only: mirrored rows and logs are never edited by hand (dj-stripe's ``ReadOnlyMixin``);
  changes go to Stripe first, through the console's services.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from djstripe import admin as djstripe_admin  # noqa: F401 - registers dj-stripe's admins first

from billing import display, types

# dj-stripe's own model admins are not used: see ``billing.admin.stripe_objects``.
for _model in [m for m in admin.site._registry if m._meta.app_label == "djstripe"]:
    admin.site.unregister(_model)

# What a pasted Stripe id looks like (cus_..., pi_..., cs_test_...).
STRIPE_ID = re.compile(r"^[a-z]{2,6}_[0-9A-Za-z_]{6,}$")


COUNT_CAP = 1_000


class CappedPaginator(Paginator):
    """Counts at most ``COUNT_CAP`` + 1 rows (``SELECT COUNT(*) FROM (… LIMIT 1001)``), in no
    order: the planner may read the filter's own index instead of the list's ordering. A
    count that reads a row's JSON (a status kept in Stripe's data) costs about 10 µs a row, so
    1,001 rows stay within milliseconds; 20 pages of 50 is as far as anyone pages."""

    cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        object_list = self.object_list
        if isinstance(object_list, QuerySet):
            return object_list.order_by()[: self.cap + 1].count()
        return len(object_list)

    @property
    def capped(self) -> bool:
        """True when there are more rows than were counted."""
        return self.count > self.cap


class ConsoleList:
    """The console's lists: capped counts, no second count of the whole table, and the
    console's stylesheet (a static file: the Content-Security-Policy allows no inline styles
    without the request's nonce)."""

    paginator = CappedPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # "Show counts" counts every filter choice
    list_per_page = 50

    class Media:
        css = {"all": ("billing/console.css",)}

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        """Only what the list's own filters ask for. Django allows a lookup on any local field
        or JSON path in the query string, and a list that answers whether
        ``?secret__startswith=whsec_a`` matches gives a masked secret away a letter at a time."""
        field, _, rest = lookup.partition("__")
        filters = self.get_list_filter(request) if request is not None else self.list_filter
        for item in filters:
            if isinstance(item, type) and issubclass(item, admin.SimpleListFilter):
                if lookup == item.parameter_name:
                    return True
            elif (item[0] if isinstance(item, tuple | list) else item) == field:
                return rest in _FILTER_LOOKUPS
        return False


# The lookups Django's field filters make (choices, booleans, relations, empty values).
_FILTER_LOOKUPS = frozenset({"", "exact", "isnull", "in", "id__exact", "pk__exact"})


class ChoicesFilter(admin.SimpleListFilter):
    """A filter on ``field`` whose choices come from ``choices()``, not from the table."""

    field = ""

    def choices_for(self) -> Iterable[tuple[str, str]]:
        raise NotImplementedError

    def lookups(self, request, model_admin):
        return list(self.choices_for())

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.field: self.value()})
        return queryset


def choices_filter(
    field: str, title: str, choices: Callable[[], Iterable[tuple[str, str]]]
) -> type[ChoicesFilter]:
    """A ``ChoicesFilter`` class for ``field``; ``choices`` is called when the list is shown
    (registries fill up as apps load)."""
    return type(
        f"{field.title().replace('_', '')}Filter",
        (ChoicesFilter,),
        {
            "field": field,
            "title": title,
            "parameter_name": field,
            "choices_for": lambda self: choices(),
        },
    )


def exact_search(queryset: QuerySet, term: str, fields: Iterable[str]) -> QuerySet:
    """Rows whose ``fields`` hold ``term`` exactly (each through its own index)."""
    query = Q()
    for field in fields:
        query |= Q(**{field: term})
    return queryset.filter(query)


class ReadOnly:
    """Nothing is added, changed or deleted by hand (dj-stripe's ``ReadOnlyMixin``): mirrored
    rows change in Stripe first, logs and records only by the code that keeps them. For model
    admins and inlines alike."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(ReadOnly, admin.TabularInline):
    extra = 0
    can_delete = False


class FoundByTypedId:
    """A page found by the id in its URL, as linked or as typed. The admin unquotes that id (its
    links escape characters as ``_XX``, ``_`` itself as ``_5F``), so an id pasted or typed by
    hand whose ``_`` is followed by what reads as an escape (``ord_23…`` becomes ``ord#…``,
    ``cus_3A…`` becomes ``cus:…``) arrives altered: quoted back it is the id as typed, looked
    up once more. Admins find their rows in ``object_find``."""

    def get_object(self, request, object_id, from_field=None):
        found = self.object_find(request, object_id, from_field)
        typed = quote(object_id) if object_id else object_id
        if found is None and typed != object_id:
            found = self.object_find(request, typed, from_field)
        return found

    def object_find(self, request, object_id, from_field=None):
        return super().get_object(request, object_id, from_field)


class ReadOnlyAdmin(FoundByTypedId, ReadOnly, ConsoleList, admin.ModelAdmin):
    """Logs and mirrored state are never edited by hand."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


def admin_link(object_type: str, stripe_id: str | None, text: str | None = None) -> str:
    """A link to the console page of a mirrored object by its Stripe id (no query)."""
    if not stripe_id:
        return "-"
    if not has_page(object_type):
        return stripe_id
    url = display.admin_url(f"djstripe_{types.model_for(object_type)._meta.model_name}", stripe_id)
    return format_html('<a href="{}">{}</a>', url, text or stripe_id)


def order_link(public_id: str | None) -> str:
    if not public_id:
        return "-"
    url = display.admin_url("orders_order", public_id)
    return format_html('<a href="{}">{}</a>', url, public_id)


def json_block(data: Any) -> str:
    """Stripe data for a page: formatted, secrets masked, in a scrolling block."""
    return format_html('<pre class="console-json">{}</pre>', display.pretty_json(data))


def facts_table(rows: list[tuple[str, Any]]) -> str:
    rows = [(label, value) for label, value in rows if value not in (None, "", [], {})]
    if not rows:
        return "-"
    return format_html(
        '<table class="console-facts">{}</table>',
        format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
    )


def object_link(object_type: str, stripe_id: str) -> str:
    """The console page of a mirrored object, when the type has one."""
    if has_page(object_type) and stripe_id:
        return admin_link(object_type, stripe_id)
    return stripe_id or "-"


def has_page(object_type: str) -> bool:
    """Whether the console has a page for objects of this type."""
    model = types.model_for(object_type)
    return model is not None and admin.site.is_registered(model)


def register(object_type: str):
    """Register the console's admin for a mirrored type of the registry (``billing.types``)."""

    def decorator(admin_class):
        admin_class.object_type = object_type
        return admin.register(types.model_for(object_type))(admin_class)

    return decorator
