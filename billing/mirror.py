"""Row-level writes to the dj-stripe mirror, used only by ``billing.sync``.

dj-stripe's ``sync_from_stripe_data`` upserts one object and creates missing related rows,
but leaves related rows that already exist as they were, even when the data carries a fresh
expanded copy of them. ``billing.sync`` therefore writes every expanded related object first,
each through the ordering guard, then the object itself with ``upsert``. Nothing else calls
these functions: they know nothing of ordering.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import JSONField, UUIDField
from django.db.models.signals import post_save, pre_save
from django.utils import timezone
from djstripe import models as djstripe_models
from djstripe.fields import StripePercentField

from billing import fastjson, stripe_api, types


def model_for(object_type: str) -> type[djstripe_models.StripeModel] | None:
    return types.model_for(object_type)


def _is_mirrored_object(value: Any) -> bool:
    return isinstance(value, dict) and value.get("object") in types.models() and "id" in value


def expanded_children(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Related objects that came expanded inside ``data`` (one level; recursion does the rest)."""
    children = []
    for key, value in data.items():
        if key == "object":
            continue
        if _is_mirrored_object(value):
            children.append(value)
        elif isinstance(value, dict) and value.get("object") == "list":
            children.extend(item for item in value.get("data", []) if _is_mirrored_object(item))
    return children


def upsert(data: dict[str, Any]) -> djstripe_models.StripeModel | None:
    """Write ``data`` (a full object as Stripe returned it, a plain dict); ``billing.sync``
    has written its expanded children already, so dj-stripe finds their rows instead of
    fetching them.

    (A child pointing back at a parent that is not mirrored yet makes dj-stripe fetch that
    parent: handlers avoid such expansions.)
    """
    model = model_for(data.get("object", ""))
    if model is None:
        return None
    return model.sync_from_stripe_data(_sync_data(data), api_key=settings.STRIPE_SECRET_KEY)


class _NestedList(dict):
    """A nested list (invoice lines, subscription items, refunds) that dj-stripe iterates
    and pages (``auto_paging_iter``) as it does stripe-python's, inside a plain dict."""

    def __iter__(self) -> Iterator[Any]:  # stripe-python's lists iterate over their items
        return iter(self.get("data") or ())

    def auto_paging_iter(self) -> Iterator[Any]:
        if self.get("has_more"):  # the rest is fetched, as stripe-python would
            yield from stripe_api.as_stripe_object(self).auto_paging_iter()
        else:
            yield from self.get("data") or ()


def _sync_data(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` for dj-stripe: a copy (it sets defaults on nested items) whose nested lists
    page like stripe-python's. Plain dicts spare dj-stripe converting the object to
    stripe-python's classes and back to JSON, which cost more than the rest of a write."""
    return _nested_lists(fastjson.copy(data))


def _nested_lists(value: Any) -> Any:
    """``value``, a copy of its own, with every nested list made a ``_NestedList``."""
    if type(value) is dict:
        for key, item in value.items():
            if type(item) is dict or type(item) is list:
                value[key] = _nested_lists(item)
        return _NestedList(value) if value.get("object") == "list" else value
    if type(value) is list:
        for index, item in enumerate(value):
            if type(item) is dict or type(item) is list:
                value[index] = _nested_lists(item)
    return value


def _related(data: dict[str, Any], model: type | None = None) -> Iterator[tuple[type, str, bool]]:
    """(model, Stripe id, carried) of every object dj-stripe writes or finds while writing
    ``data``: what its foreign keys point at, and the items of its nested lists and what
    theirs point at. ``carried``: ``data`` holds the object itself (expanded, or a list
    item), not only its id."""
    model = model or model_for(data.get("object", ""))
    if model is None:
        return
    for field in _stripe_foreign_keys(model):
        value = data.get(field.name)
        stripe_id = value.get("id") if isinstance(value, dict) else value
        if isinstance(stripe_id, str) and stripe_id:
            yield field.related_model, stripe_id, isinstance(value, dict)
    for value in data.values():
        if isinstance(value, dict) and value.get("object") == "list":
            for item in value.get("data") or ():
                item_model = types.models(list_items=True).get(item.get("object", ""))
                if item_model is not None and isinstance(item.get("id"), str):
                    yield item_model, item["id"], True
                    yield from _related(item, item_model)


@functools.cache
def _stripe_foreign_keys(model: type) -> tuple[Any, ...]:
    return tuple(
        f
        for f in model._meta.concrete_fields
        if f.is_relation and issubclass(f.related_model, djstripe_models.StripeModel)
    )


def locks_take(stripe_ids: Iterable[str]) -> None:
    """The objects' locks (see ``billing.sync.object_lock``), held until the transaction ends."""
    if connection.vendor == "postgresql" and stripe_ids:
        with connection.cursor() as cursor:
            # One statement; a function scan yields the array in its (sorted) order.
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(hashtextextended(id, 0)))"
                " FROM unnest(%s::text[]) AS id",
                [sorted(set(stripe_ids))],
            )


# --- One batch of writes --------------------------------------------------------------------
#
# dj-stripe, syncing one object, looks up its owner account (API key row, account row) and
# the row of the object and of every object its foreign keys point at, one query each; a new
# row it looks up twice more and inserts inside a savepoint. Within one batch of writes
# (``billing.sync.objects_write``) the batch takes the locks of every object it carries whole
# (one of its objects, an expanded one, an item of a nested list, what such an item expands),
# then loads those rows and the rows they point at up front, one query for all, and dj-stripe
# finds them here. A carried object that has no row is inserted without looking again, as
# dj-stripe would after finding it absent: the batch found it absent under its lock. A row
# the batch did not ask for, dj-stripe looks up (and, missing, fetches and inserts) as it
# always does, under that object's lock taken then.

_batch = threading.local()
_account_lookup = djstripe_models.Account.get_or_retrieve_for_api_key.__func__
_row_lookup = djstripe_models.StripeModel._get_or_create_from_stripe_object.__func__
_row_create = djstripe_models.StripeModel._create_from_stripe_object.__func__


def _account_for_key(cls, api_key: str):
    cache = getattr(_batch, "accounts", None)
    if cache is None:
        return _account_lookup(cls, api_key)
    if api_key not in cache:
        cache[api_key] = _account_lookup(cls, api_key)
    return cache[api_key]


def _row_for_field(cls, data, field_name="id", *args, **kwargs):
    rows = getattr(_batch, "rows", None)
    if rows is None:
        return _row_lookup(cls, data, field_name, *args, **kwargs)
    value = data.get(field_name)
    stripe_id = value.get("id") if isinstance(value, dict) else value
    row = rows.get((cls, stripe_id)) if isinstance(stripe_id, str) else None
    if row is not None:
        # A row this batch inserted from this very data counts as created: dj-stripe then
        # leaves it, where it would write it again as it is (it syncs subscription items so).
        return row, field_name == "id" and _batch.inserted.get((cls, stripe_id)) is data
    # What dj-stripe would create the row from: the data, or the object expanded in the field.
    carried = data if field_name == "id" else value if isinstance(value, dict) else None
    if (
        carried is not None
        and not args
        and kwargs.get("save", True)
        and cls._create_from_stripe_object.__func__ is _row_create  # not overridden
        and (cls, stripe_id) in _batch.absent
    ):
        row, created = _row_insert(cls, carried, **kwargs), True
    else:
        if carried is None and isinstance(stripe_id, str):
            # Not in the batch: dj-stripe finds the row, or fetches the object from Stripe and
            # inserts it. Under the object's lock, a writer doing the same meanwhile (another
            # page of a backfill) is waited for, and its row found: one fetch, one insert.
            locks_take([stripe_id])
        row, created = _row_lookup(cls, data, field_name, *args, **kwargs)
    if row is not None:
        rows[(cls, row.id)] = row
        _batch.absent.discard((cls, row.id))
    return row, created


def _row_insert(cls, data, *, refetch=True, pending_relations=None, save=True, **kwargs):
    """dj-stripe's ``_create_from_stripe_object`` for a row the batch found absent: its
    lookup is the batch's identity map, and no savepoint guards the insert."""
    pending_relations = [] if pending_relations is None else pending_relations
    current_ids, api_key = kwargs.get("current_ids"), kwargs.get("api_key")
    record = cls._stripe_object_to_record(data, pending_relations=pending_relations, **kwargs)
    written = _batch.rows.get((cls, data["id"]))
    if written is not None:
        # Resolving its foreign keys wrote it (a fetched parent's hook syncs its children),
        # where dj-stripe's second lookup would find it: that row, as dj-stripe returns it.
        return written
    row = cls(**record)
    row._attach_objects_hook(cls, data, api_key=api_key, current_ids=current_ids)
    if pending_relations or not _deferrable(cls):
        # Sent at once, after the rows waiting before it ("Deferred inserts" below).
        _flush()
        row.save()
    else:
        _defer(row)
    _batch.rows[(cls, row.id)] = row  # its post-save hook writes rows that point back at it
    _batch.inserted[(cls, row.id)] = data
    row._attach_objects_post_save_hook(
        cls, data, api_key=api_key, pending_relations=pending_relations
    )
    return row


# --- Deferred inserts (PostgreSQL) ------------------------------------------------------------
#
# A row the batch inserts is not sent at once: it gets its primary key from the table's
# sequence (so rows pointing at it, and its many-to-many links, can be saved) and waits, and
# the batch sends each table's new rows in one COPY as it ends, still inside its transaction
# (PostgreSQL checks foreign keys at commit). dj-stripe saving a waiting row again changes
# what will be sent. A row is sent at once where something could read it back first: a
# relation waiting for it, a model with save signals, or one whose sync drops cached fields
# (dj-stripe re-reads those from the database). SQLite inserts each row at once.


def _deferrable(cls: type) -> bool:
    return (
        connection.vendor == "postgresql"
        and not post_save.has_listeners(cls)
        and not pre_save.has_listeners(cls)
        and not _drops_cached_fields(cls)
    )


@functools.cache
def _drops_cached_fields(cls: type) -> bool:
    """dj-stripe's sync deletes these from the instance, to be re-read from the database."""
    return any(isinstance(f, (StripePercentField, UUIDField)) for f in cls._meta.concrete_fields)


def _defer(row) -> None:
    model = type(row)
    keys = _batch.keys.setdefault(model, [])
    if not keys:  # enough keys for every row of this model the batch may insert
        wanted = max(1, sum(1 for m, _ in _batch.absent if m is model))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [model._meta.db_table, model._meta.pk.column, wanted],
            )
            keys.extend(key for (key,) in reversed(cursor.fetchall()))
    row.pk = keys.pop()
    row.save = functools.partial(_waiting_save, row)  # this instance only
    # A new row has no many-to-many links: its managers know that without asking.
    row._prefetched_objects_cache = {
        f.name: f.related_model._default_manager.none() for f in model._meta.many_to_many
    }
    _waiting_save(row)


def _waiting_save(row, *args, **kwargs) -> None:
    """``save()`` of a row still waiting: what it holds now is what will be sent (its JSON
    written out now, as a save would: dj-stripe goes on changing the dicts it came from)."""
    _batch.waiting.setdefault(type(row), {})[row.pk] = (row, insert_values(row))


def insert_values(row) -> list[Any]:
    """The column values an INSERT of ``row`` would send, in ``concrete_fields`` order."""
    db = connections[DEFAULT_DB_ALIAS]  # the connection itself: fields ask it a lot
    values = []
    for field in row._meta.concrete_fields:
        value = field.pre_save(row, True)
        if isinstance(field, JSONField):
            values.append(None if value is None else fastjson.dumps(value, field.encoder))
        else:
            values.append(field.get_db_prep_save(value, db))
    return values


def copy_insert(model: type, rows: list[list[Any]]) -> None:
    """Insert ``rows`` (``insert_values`` of each) into ``model``'s table in one COPY
    (PostgreSQL), logged as Django logs its own statements (debug toolbar, tests)."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in model._meta.concrete_fields)
    sql = f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
    started = time.monotonic()
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for values in rows:
            copy.write_row(values)
    if connection.queries_logged:
        took = f"{time.monotonic() - started:.3f}"
        connection.queries_log.append({"sql": f"{sql} ({len(rows)} rows)", "time": took})


def _flush() -> None:
    """Send the rows waiting in this thread's batch, one COPY per table."""
    waiting = getattr(_batch, "waiting", None)
    if not waiting:
        return
    for model, rows in waiting.items():
        copy_insert(model, [values for _, values in rows.values()])
        for row, _ in rows.values():
            del row.save, row._prefetched_objects_cache
            row._state.adding, row._state.db = False, connection.alias
    waiting.clear()


djstripe_models.Account.get_or_retrieve_for_api_key = classmethod(_account_for_key)
djstripe_models.StripeModel._get_or_create_from_stripe_object = classmethod(_row_for_field)


@contextmanager
def batch(objects: list[dict[str, Any]]) -> Iterator[dict[str, djstripe_models.StripeModel]]:
    """Within the block, this thread's dj-stripe syncs find the owner account, the rows of
    ``objects`` and the rows their foreign keys point at without a query each (loaded here,
    up front: ``_rows_load``), and insert the objects that have no row without looking again.
    Yields the rows of ``objects`` as they were, by Stripe id. Call inside a transaction.

    First it takes the locks of every object it holds whole, in one statement: ``objects``
    and what they carry (expanded objects, the items of nested lists and what those expand,
    such as a subscription item's price). Two batches carrying the same object (two pages of
    a backfill written side by side) write it one after the other, the second finding the
    first's row."""
    wanted: dict[type, set[str]] = {}  # the batch's objects
    pointed: dict[type, set[str]] = {}  # what they point at or carry
    carried: set[tuple[type, str]] = set()  # objects the batch holds whole
    for data in objects:
        model = model_for(data.get("object", ""))
        if model is not None:
            wanted.setdefault(model, set()).add(data["id"])
            carried.add((model, data["id"]))
        for related, stripe_id, whole in _related(data):
            pointed.setdefault(related, set()).add(stripe_id)
            if whole:
                carried.add((related, stripe_id))
    locks_take({stripe_id for _, stripe_id in carried})
    rows = _rows_load(wanted, pointed)
    names = ("accounts", "rows", "absent", "inserted", "keys", "waiting")
    outer = {name: getattr(_batch, name, None) for name in names}
    absent = carried - rows.keys()
    if outer["rows"] is None:
        _batch.accounts, _batch.rows, _batch.absent = {}, rows, absent
        _batch.inserted, _batch.keys, _batch.waiting = {}, {}, {}
    else:  # a batch within a batch: one identity map, and the outer batch sends the rows
        _batch.rows = {**outer["rows"], **rows}
        _batch.absent = outer["absent"] | absent
    try:
        yield {
            stripe_id: row
            for data in objects
            if (model := model_for(data.get("object", ""))) is not None
            and (row := rows.get((model, stripe_id := data["id"]))) is not None
        }
        if outer["rows"] is None:
            _flush()
    finally:
        if outer["rows"] is not None:  # the outer batch sees what this one wrote
            outer["rows"].update(_batch.rows)
            outer["absent"].difference_update(_batch.rows.keys())
        for name, value in outer.items():
            setattr(_batch, name, value)


def _rows_load(
    wanted: dict[type, set[str]], pointed: dict[type, set[str]]
) -> dict[tuple[type, str], djstripe_models.StripeModel]:
    """The rows of ``wanted`` (whole) and ``pointed`` (only their key and id: any other field
    is read if used), by (model, Stripe id). On PostgreSQL one query finds which rows exist,
    and only the wanted ones found are loaded whole; elsewhere one query per model."""
    ids = {
        model: wanted.get(model, set()) | pointed.get(model, set())
        for model in wanted.keys() | pointed.keys()
    }
    rows = {}
    if connection.vendor != "postgresql":
        for model, stripe_ids in ids.items():
            found = model.stripe_objects.filter(id__in=stripe_ids)
            if model not in wanted:
                found = found.only("pk", "id")
            rows.update(((model, row.id), row) for row in found)
        return rows
    models = list(ids)
    quote = connection.ops.quote_name
    sql = " UNION ALL ".join(  # names from the models' metadata only
        f"SELECT {n}, {quote(m._meta.pk.column)}, {quote(m._meta.get_field('id').column)}"  # noqa: S608
        f" FROM {quote(m._meta.db_table)} WHERE {quote(m._meta.get_field('id').column)} = ANY(%s)"
        for n, m in enumerate(models)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(ids[m]) for m in models])
        found = cursor.fetchall()
    whole: dict[type, list[Any]] = {}
    for n, pk, stripe_id in found:
        model = models[n]
        if model in wanted:
            whole.setdefault(model, []).append(pk)
        else:  # as ``only("pk", "id")`` loads it
            known = {model._meta.pk.attname: pk, "id": stripe_id}
            values = [known[f.attname] for f in model._meta.concrete_fields if f.attname in known]
            rows[(model, stripe_id)] = model.from_db(connection.alias, list(known), values)
    for model, keys in whole.items():
        rows.update(((model, row.id), row) for row in model.stripe_objects.filter(pk__in=keys))
    return rows


def row_for(data: dict[str, Any]) -> djstripe_models.StripeModel | None:
    model = model_for(data.get("object", ""))
    if model is None:
        return None
    return model.objects.filter(id=data["id"]).first()


def mark_deleted(data: dict[str, Any]) -> djstripe_models.StripeModel | None:
    """An object Stripe no longer has: keep the row (history points at it), flag it deleted."""
    row = row_for(data)
    if row is None:
        return None
    stripe_data = dict(row.stripe_data or {})
    stripe_data["deleted"] = True
    fields = {"stripe_data": stripe_data}
    if hasattr(row, "date_purged"):
        fields["date_purged"] = timezone.now()
    type(row).objects.filter(pk=row.pk).update(**fields)
    row.refresh_from_db()
    return row
