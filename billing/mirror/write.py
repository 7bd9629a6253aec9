"""The one mirror write path: every writer of the dj-stripe mirror goes through here.

Events, the return page, catalog sync, customer creation, cancellation, the admin's metadata
edits and resyncs, backfill: each either fetches an object (``object_sync``) or already has
Stripe's answer to a request (``object_write``, ``objects_write``), and writes it here.

Rules (DESIGN.md):
- No database transaction or lock is held across a call to Stripe. ``object_sync`` fetches
  first, then writes in one short transaction.
- Never older over newer. Each object remembers when the fetch that wrote it started
  (``ObjectSync.fetch_started_at``, on the database clock). A copy is written only if its
  fetch started at or after that moment; otherwise the mirror already holds a state at least
  as new, and is kept. The check runs under the per-object lock, for the object and for each
  expanded child it carries, so no path can put an older child over a newer row either.
- A fetch that started after an event was received reflects that event: events received
  before the last fetch of their object need no fetch of their own (coalescing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from billing import fastjson, stripe_api
from billing.mirror import djstripe, records
from billing.models import ObjectSync

# Stripe object type -> expansions to ask for whenever that object is fetched (filled by
# ``billing.webhooks.registry.register``: each handler declares what it reads).
EXPANSIONS: dict[str, set[str]] = {}


def expansions(object_type: str) -> list[str]:
    return sorted(EXPANSIONS.get(object_type, ()))


# Called with the objects of every batch the mirror writes (each object and what it carries
# expanded), inside the batch's transaction and under its locks: how an app keeps its own
# records of the mirror (orders ties each Stripe id to its order) without a second write path.
WRITTEN: list[Callable[[list[dict[str, Any]]], None]] = []


def written_register(listener: Callable[[list[dict[str, Any]]], None]) -> None:
    if listener not in WRITTEN:
        WRITTEN.append(listener)


# --- Locks and the clock --------------------------------------------------------------------


def fetch_started() -> datetime:
    """Now, on the database's clock: read it just before a Stripe request whose answer you
    will write, so web and worker machines compare fetch times on one clock."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()")
            return cursor.fetchone()[0]
    return timezone.now()


# --- What a write returns -------------------------------------------------------------------


@dataclass(frozen=True)
class Synced:
    """The outcome of bringing one object into the mirror."""

    obj: dict[str, Any]  # the object as the mirror now has it (ours, or a newer copy)
    mirror: Any | None  # the dj-stripe row (None for types without a model)
    previous: dict[str, Any] | None  # the row's data before this write (None: new, or kept)
    written: bool  # False when the mirror already held a copy from a later fetch
    coalesced: bool  # served by an earlier fetch, without calling Stripe
    deleted: bool


@dataclass(frozen=True)
class Fetched:
    data: dict[str, Any]
    started_at: datetime
    expand: tuple[str, ...]


# --- Fetch (no lock, no transaction) --------------------------------------------------------


def object_fetch(*, object_type: str, stripe_id: str) -> Fetched:
    """Retrieve one object with its registered expansions. Call with no transaction open.

    An object Stripe no longer has comes back as a deletion stub (``deleted: true``), which
    the write marks deleted in the mirror.
    """
    expand = expansions(object_type)
    started = fetch_started()
    try:
        data = stripe_api.as_dict(
            stripe_api.retrieve(object_type=object_type, stripe_id=stripe_id, expand=expand)
        )
    except stripe_api.StripeNotFound:
        data = {"id": stripe_id, "object": object_type, "deleted": True}
    return Fetched(data=data, started_at=started, expand=tuple(expand))


def coalesced(*, object_type: str, stripe_id: str, not_older_than: datetime) -> Synced | None:
    """The mirror's copy when a fetch that started at or after ``not_older_than`` wrote it
    with every expansion this type needs; None when a fetch is needed."""
    state = ObjectSync.objects.filter(stripe_id=stripe_id).first()
    if not _serves(state, not_older_than, expansions(object_type)):
        return None
    return Synced(
        obj=state.snapshot,
        mirror=records.row_for(state.snapshot),
        previous=None,
        written=False,
        coalesced=True,
        deleted=state.deleted_at is not None,
    )


def _serves(state: ObjectSync | None, not_older_than: datetime, expand: Iterable[str]) -> bool:
    return (
        state is not None
        and state.snapshot is not None
        and state.fetch_started_at is not None
        and state.fetch_started_at >= not_older_than
        and set(expand) <= set(state.snapshot_expand or ())
    )


def object_sync(
    *, object_type: str, stripe_id: str, not_older_than: datetime | None = None
) -> Synced:
    """Bring one object's mirror up to Stripe's current state; return that state.

    Call outside ``transaction.atomic``: the fetch must not hold locks. With
    ``not_older_than`` (an event's receipt time), a fetch that started at or after that
    moment is reused instead of calling Stripe again.
    """
    if not_older_than is not None:
        reused = coalesced(
            object_type=object_type, stripe_id=stripe_id, not_older_than=not_older_than
        )
        if reused is not None:
            return reused
    fetched = object_fetch(object_type=object_type, stripe_id=stripe_id)
    return object_write(data=fetched.data, started_at=fetched.started_at, expand=fetched.expand)


# --- Write (short transaction, per-object locks, the ordering guard) ------------------------


def object_write(
    *, data: dict[str, Any] | Any, started_at: datetime, expand: Iterable[str] = ()
) -> Synced:
    """Write one object Stripe returned (a fetch, or the answer to a create or update).

    ``started_at`` is ``fetch_started()`` read just before that request; ``expand`` lists the
    expansions ``data`` carries (what later coalescing may rely on).
    """
    return objects_write(objects=[data], started_at=started_at, expand=expand)[0]


def objects_write(
    *,
    objects: Iterable[dict[str, Any] | Any],
    started_at: datetime,
    expand: Iterable[str] = (),
    product_features: bool = True,
) -> list[Synced]:
    """Write objects from one Stripe answer (e.g. a list page) in one short transaction.

    Per batch, not per object: one statement takes every lock, one query reads the guard's
    state, one query per model reads the rows as they were and the rows they point at (which
    dj-stripe then finds without a query each), one statement stores the new state, and
    dj-stripe looks the owner account up once.

    ``objects`` are stripe-python's objects, or plain dicts of JSON as Stripe sent it
    (``stripe_api.as_dict``, ``list_page_data``), which are written as they are.

    ``product_features=False`` leaves products' features (entitlements) as they are, where
    dj-stripe would list them with a request per product: a backfill makes list calls only.
    """
    objects = [o if type(o) is dict else stripe_api.as_dict(o) for o in objects]
    if not objects:  # an empty page: nothing to lock, read or write
        return []
    every = [d for o in objects for d in _with_children(o)]
    ids = [d["id"] for d in every]
    # The batch takes the locks: of ``every`` object and of what they carry.
    with transaction.atomic(), djstripe.batch(every, product_features=product_features) as rows:
        batch = _Batch(
            started_at=started_at,
            states={s.stripe_id: s for s in ObjectSync.objects.filter(stripe_id__in=ids)},
            rows=rows,
            # as it was: dj-stripe updates the rows themselves as the batch writes them
            before={sid: dict(row.stripe_data or {}) or None for sid, row in rows.items()},
        )
        results = [_write(data, batch, tuple(sorted(expand)), top=True) for data in objects]
        _states_save(list(batch.written.values()), known=batch.states.keys())
        for listener in WRITTEN:
            listener(every)
        return results


def _states_save(states: list[ObjectSync], known: Iterable[str]) -> None:
    """Insert or replace the states; ``known``: the ids that had a state when the batch read
    them, under the objects' locks (so no other writer can have added one since).

    On PostgreSQL the new states go in one COPY and the known ones are replaced in one
    statement, their rows travelling as one JSON document that the server unpacks
    (``jsonb_to_recordset``): Django's ``bulk_create`` sends rows as one array per column, and
    quoting each snapshot into its array cost more than the rest of the write.
    """
    if not states:
        return
    fields = list(ObjectSync._meta.concrete_fields)
    if connection.vendor != "postgresql":
        ObjectSync.objects.bulk_create(
            states,
            update_conflicts=True,
            unique_fields=["stripe_id"],
            update_fields=[f.name for f in fields if not f.primary_key],
        )
        return
    known = set(known)
    new = [djstripe.insert_values(s) for s in states if s.stripe_id not in known]
    if new:
        djstripe.copy_insert(ObjectSync, new)
    replaced = [s for s in states if s.stripe_id in known]
    if not replaced:
        return
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    typed = ", ".join(f"{quote(f.column)} {f.db_type(connection)}" for f in fields)
    updates = ", ".join(
        f"{quote(f.column)} = EXCLUDED.{quote(f.column)}" for f in fields if not f.primary_key
    )
    sql = (  # names from the model's metadata only; the rows are the one parameter
        f"INSERT INTO {quote(ObjectSync._meta.db_table)} ({columns}) SELECT {columns}"  # noqa: S608
        f" FROM jsonb_to_recordset(%s::jsonb) AS r({typed})"
        f" ON CONFLICT ({quote(ObjectSync._meta.pk.column)}) DO UPDATE SET {updates}"
    )
    rows = [{f.column: f.value_from_object(state) for f in fields} for state in replaced]
    with connection.cursor() as cursor:
        # datetimes in full: ``fetch_started_at`` orders writes to the microsecond
        cursor.execute(sql, [fastjson.dumps(rows, default=datetime.isoformat)])


@dataclass
class _Batch:
    started_at: datetime
    states: dict[str, ObjectSync]  # the guard's state of every object in the batch
    rows: dict[str, Any]  # mirror rows of the batch's objects, by Stripe id
    before: dict[str, dict[str, Any] | None]  # their data before the batch
    written: dict[str, ObjectSync] = field(default_factory=dict)  # new states, saved at the end


def _with_children(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield data
    for child in records.expanded_children(data):
        yield from _with_children(child)


def _write(data: dict[str, Any], batch: _Batch, expand: tuple[str, ...], *, top: bool) -> Synced:
    # Children first: dj-stripe, syncing a parent, creates a missing related row by fetching
    # it from Stripe, and leaves an existing one as it is; writing each child through the
    # guard makes the row exist and keeps a newer one.
    for child in records.expanded_children(data):
        if not child.get("deleted") and child["id"] not in batch.written:
            _write(child, batch, (), top=False)

    stripe_id = data["id"]
    state = batch.states.get(stripe_id)
    if state is not None and state.fetch_started_at and state.fetch_started_at > batch.started_at:
        # The mirror holds a later fetch: keep it. Hand back its copy when it has what ours
        # has (the handler then acts on the newest state), otherwise ours, which is still at
        # least as new as whatever the caller is reacting to.
        newer = _serves(state, state.fetch_started_at, expand) and not state.deleted_at
        return Synced(
            obj=state.snapshot if newer else data,
            mirror=batch.rows.get(stripe_id),
            previous=None,
            written=False,
            coalesced=False,
            deleted=state.deleted_at is not None,
        )

    previous = batch.before.get(stripe_id)
    deleted = bool(data.get("deleted"))
    if deleted:
        row = records.mark_deleted(data)
    elif previous == data:
        # The row holds this very data: dj-stripe would write it again as it is (an object
        # expanded in page after page of a backfill, an event repeating the last fetch).
        row = batch.rows[stripe_id]
    else:
        row = records.upsert(data)
    now = timezone.now()
    batch.written[stripe_id] = ObjectSync(
        stripe_id=stripe_id,
        object_type=data.get("object", ""),
        fetch_started_at=batch.started_at,
        synced_at=now,
        snapshot=data,
        snapshot_expand=list(expand),
        deleted_at=((state and state.deleted_at) or now) if deleted else None,
        fetch_count=(state.fetch_count if state else 0) + (1 if top else 0),
    )
    return Synced(
        obj=data, mirror=row, previous=previous, written=True, coalesced=False, deleted=deleted
    )
