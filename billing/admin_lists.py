"""What every console list does to cost the same on a table of a thousand rows or ten million.

- Counting: Django's paginator counts every row a list matches, a scan of the table on an
  unfiltered list. ``CappedPaginator`` counts up to ``COUNT_CAP`` rows and then says "more
  than"; the pages past it are not offered (a search or a filter narrows the list instead).
- Filters: a field filter lists its choices with ``SELECT DISTINCT`` over the whole table.
  ``ChoicesFilter`` takes its choices from the code (a registry, a fixed list).
- Searching: the admin's ``=field`` search compiles to ``UPPER(field) = UPPER(term)``, which no
  index serves. ``exact_search`` matches ids exactly, as they are stored.
- Ordering: each list's ordering has an index (the models' ``Meta.indexes``, and migration
  ``billing.0009`` for dj-stripe's tables).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.utils.functional import cached_property

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
