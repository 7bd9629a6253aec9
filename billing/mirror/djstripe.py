"""The one place that bends dj-stripe: how a batch of the mirror's writes
(``billing.mirror.write.objects_write``) makes dj-stripe cost a few statements per batch instead
of a few per object.

dj-stripe offers no hook for this, so two of its classmethods are replaced, for every caller,
by versions that behave exactly as dj-stripe's outside a batch and, inside one, find their
answers in the batch's identity map:
- ``Account.get_or_retrieve_for_api_key``: looked up once per batch, not once per object;
- ``StripeModel._get_or_create_from_stripe_object``: a row the batch loaded up front is found
  without a query; a row the batch found absent is inserted without dj-stripe's two further
  lookups and savepoint, and on PostgreSQL sent with the batch's other new rows in one COPY;
- ``Product._sync_product_features`` (a request per product): skipped in a batch that asks.

``owner_account_keep`` gives dj-stripe the key's owner account from an answer in hand, where it
would retrieve the account itself (twice: syncing the account looks its owner up again).
``tests/billing/test_djstripe_adapter.py`` fails when dj-stripe changes what these rely on
(its version, the signatures and the private helpers called here).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import JSONField, UUIDField
from django.db.models.signals import post_save, pre_save
from djstripe import models as djstripe_models
from djstripe.fields import StripePercentField

from billing import fastjson, types
from billing.mirror import locks, records

# --- One batch of writes --------------------------------------------------------------------
#
# dj-stripe, syncing one object, looks up its owner account (API key row, account row) and
# the row of the object and of every object its foreign keys point at, one query each; a new
# row it looks up twice more and inserts inside a savepoint. Within one batch of writes
# (``billing.mirror.objects_write``) the batch takes the locks of every object it carries whole
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
_features_sync = djstripe_models.Product._sync_product_features


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
            locks.take([stripe_id])
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


def _product_features(self, *args, **kwargs):
    # dj-stripe lists a product's features (entitlements) with a request of its own each time
    # it syncs the product; a batch from a list (a backfill's page) leaves them as they are.
    if getattr(_batch, "product_features", None) is not False:
        _features_sync(self, *args, **kwargs)


def owner_account_known(*, api_key: str) -> bool:
    """Whether dj-stripe finds the owner account of ``api_key`` without a request."""
    return djstripe_models.APIKey.objects.filter(
        secret=api_key, djstripe_owner_account__isnull=False
    ).exists()


def owner_account_keep(*, account: Any, api_key: str) -> None:
    """Make ``account`` (Stripe's answer to retrieving the key's own account) the owner account
    dj-stripe finds for ``api_key``, as its ``APIKey.refresh_account`` would, without the
    requests it makes for it: a row created here is synced from ``account``, after the key
    points at it, so the sync finds its owner too. A key that has an owner keeps it."""
    key, _ = djstripe_models.APIKey.objects.get_or_create_by_api_key(api_key)
    if key.djstripe_owner_account_id is not None:
        return
    with transaction.atomic():
        row, created = djstripe_models.Account.objects.get_or_create(id=account["id"])
        key.djstripe_owner_account = row
        key.save()
        if created:
            djstripe_models.Account.sync_from_stripe_data(account, api_key=api_key)


djstripe_models.Account.get_or_retrieve_for_api_key = classmethod(_account_for_key)
djstripe_models.Product._sync_product_features = _product_features
djstripe_models.StripeModel._get_or_create_from_stripe_object = classmethod(_row_for_field)


@contextmanager
def batch(
    objects: list[dict[str, Any]], *, product_features: bool = True
) -> Iterator[dict[str, djstripe_models.StripeModel]]:
    """Within the block, this thread's dj-stripe syncs find the owner account, the rows of
    ``objects`` and the rows their foreign keys point at without a query each (loaded here,
    up front: ``_rows_load``), and insert the objects that have no row without looking again.
    Yields the rows of ``objects`` as they were, by Stripe id. Call inside a transaction.

    First it takes the locks of every object it holds whole, in one statement: ``objects``
    and what they carry (expanded objects, the items of nested lists and what those expand,
    such as a subscription item's price). Two batches carrying the same object (two pages of
    a backfill written side by side) write it one after the other, the second finding the
    first's row. ``product_features=False``: products' features are not synced (no request
    per product)."""
    wanted: dict[type, set[str]] = {}  # the batch's objects
    pointed: dict[type, set[str]] = {}  # what they point at or carry
    carried: set[tuple[type, str]] = set()  # objects the batch holds whole
    for data in objects:
        model = types.model_for(data.get("object", ""))
        if model is not None:
            wanted.setdefault(model, set()).add(data["id"])
            carried.add((model, data["id"]))
        for related, stripe_id, whole in records.related(data):
            pointed.setdefault(related, set()).add(stripe_id)
            if whole:
                carried.add((related, stripe_id))
    locks.take({stripe_id for _, stripe_id in carried})
    rows = _rows_load(wanted, pointed)
    names = ("accounts", "rows", "absent", "inserted", "keys", "waiting", "product_features")
    outer = {name: getattr(_batch, name, None) for name in names}
    _batch.product_features = product_features and outer["product_features"] is not False
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
            if (model := types.model_for(data.get("object", ""))) is not None
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
    if not ids:
        return rows
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
