"""Writing one page of a backfill, in this process or in writer processes side by side
(PostgreSQL): the page's objects through the one mirror write path, their links through the
shop's keeper, its failures, and the type's checkpoint, in one transaction."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import OperationalError, connection, connections, transaction

from billing import metadata, mirror, stripe_api
from billing import types as stripe_types
from billing.mirror import compare
from billing.models import BackfillFailure, BackfillPage, BackfillProgress, BackfillRun

logger = logging.getLogger(__name__)


class BackfillError(Exception):
    """The backfill cannot start or go on; ``message`` says what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Page:
    data: list[dict[str, Any]]
    has_more: bool
    api_calls: int  # the list request, retries included


# What is listed, in which order, with which expansions: the registry's (``billing.types``).
BY_TYPE = {source.name: source for source in stripe_types.backfilled()}
TYPES = tuple(BY_TYPE)
# A backfill runs for minutes or hours: it outlasts a longer outage than a web request may
# (8 retries back off for about a minute in all).
BACKFILL_RETRIES = 8
COUNTS = ("created", "updated", "unchanged", "linked", "unlinked", "errors", "api_calls")


# --- Page writers -----------------------------------------------------------------------------
#
# On PostgreSQL pages of one type are written by several processes side by side (forked
# from this one, each with its own connection), so that writing keeps up with the API's
# limit. It is safe as every writer of the mirror is: a page's transaction takes its objects'
# locks before it reads them, so two pages carrying the same object (a payment method two
# intents expand) write it one after the other. Pages may commit in any order; each records
# itself (``BackfillPage``) and moves its type's cursor only along pages written one after
# the other. SQLite has one writer at a time anyway: pages are written here, in order.

WRITERS_MAX = 4


def writers_default() -> int:
    """One writer per CPU, up to ``WRITERS_MAX``, on PostgreSQL; one elsewhere."""
    if connection.vendor != "postgresql":
        return 1
    return max(1, min(WRITERS_MAX, os.cpu_count() or 1))


class Writers:
    """Runs page writes: ``submit`` as an executor's, ``ahead`` pages at once at most."""

    def __init__(self, pool: ProcessPoolExecutor | None, ahead: int):
        self.pool, self.ahead = pool, ahead

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        if self.pool is not None:
            return self.pool.submit(fn, *args)
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # raised where the result is read, as a pool's would be
            future.set_exception(exc)
        return future


@contextmanager
def page_writers(writers: int) -> Iterator[Writers]:
    if writers < 1:
        raise BackfillError("--writers must be at least 1.")
    if writers == 1 or connection.vendor != "postgresql" or connection.in_atomic_block:
        yield Writers(None, ahead=1)
        return
    # Forked before any thread or connection of this process exists that a child could
    # inherit half-used: its connections are closed (each process opens its own).
    connections.close_all()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        writers, mp_context=context, initializer=_writer_start, initargs=(os.getpid(),)
    ) as pool:
        pool.submit(os.getpid).result()  # forks every writer now
        yield Writers(pool, ahead=writers + 1)


def _writer_start(parent: int) -> None:
    """In a writer: Ctrl-C is the parent's to handle (it lets the pages being written
    finish); a writer whose parent is gone (killed) stops at once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def orphaned() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=orphaned, name="backfill-writer-parent", daemon=True).start()


def page_task(run, progress, page, after, started, last) -> BackfillProgress | None:
    """One page, in a writer; a deadlock with another writer (the order rows two pages
    link, locked in different orders) is retried."""
    for attempt in range(3):
        try:
            return _page_write(
                run=run, progress=progress, page=page, after=after, started=started, last=last
            )
        except OperationalError as exc:
            if attempt == 2 or getattr(exc.__cause__, "sqlstate", None) != "40P01":
                raise
            logger.warning("page after %s deadlocked with another writer; retrying", after)
    raise AssertionError("unreachable")


# --- One page -------------------------------------------------------------------------------


def expanded(source: stripe_types.StripeType) -> tuple[str, ...]:
    """The page's expansions as each object carries them (without the list's ``data.``)."""
    return tuple(path.removeprefix("data.") for path in source.list_expand)


def _page_write(
    *,
    run: BackfillRun,
    progress: BackfillProgress,
    page: Page,
    after: str | None,
    started: datetime,
    last: bool,
) -> BackfillProgress | None:
    """Write one page (listed after ``after``), link its objects, record it and move its
    type's checkpoint: one transaction. Returns the type's progress after it, or None when
    the page had been written already (a killed run wrote it, and not the page before it).
    The page's API calls: its list request and any dj-stripe made while writing it."""
    source = BY_TYPE[progress.object_type]
    expand = expanded(source)
    tally = dict.fromkeys(COUNTS, 0)
    calls_at = stripe_api.thread_calls()
    data = page.data
    with transaction.atomic():
        written, failed = _objects_write(data, started, expand)
        for obj, synced in written:
            tally[_outcome(synced, obj)] += 1
            status = metadata.link_keep(obj=obj)
            if status != "none":
                tally[status] += 1
        for obj, error in failed:
            BackfillFailure.objects.create(
                run=run, object_type=source.name, stripe_id=obj["id"], error=error
            )
        tally["errors"] = len(failed)
        tally["api_calls"] = page.api_calls + stripe_api.thread_calls() - calls_at
        # Last, and briefly: the type's row, locked, serialises the pages' checkpoints.
        progress = BackfillProgress.objects.select_for_update().get(pk=progress.pk)
        pages = BackfillPage.objects.filter(progress=progress)
        if pages.filter(after=after or "").exists():
            transaction.set_rollback(True)
            return None
        BackfillPage.objects.create(
            progress=progress, after=after or "", last_id=data[-1]["id"] if data else "", last=last
        )
        for name, value in tally.items():
            setattr(progress, name, getattr(progress, name) + value)
        progress.pages += 1
        # The cursor moves along the pages written one after the other from it.
        while step := pages.filter(after=progress.cursor).values_list("last_id", "last").first():
            progress.cursor = step[0] or progress.cursor
            if step[1]:
                progress.done = True
                break
        progress.save()
    return progress


def _objects_write(data: list[dict[str, Any]], started: datetime, expand: tuple[str, ...]):
    """The page in one write; if that fails, object by object, to keep the good ones and
    name the bad ones. Returns (written [(obj, Synced)], failed [(obj, error)])."""
    # Each write is a transaction of its own (a savepoint here), undone whole if it fails.
    try:
        synced = mirror.objects_write(
            objects=data, started_at=started, expand=expand, product_features=False
        )
        return list(zip(data, synced, strict=True)), []
    except Exception as exc:  # narrowed below, one object at a time
        logger.warning(
            "a page of %s failed to write (%s: %s); writing it object by object",
            len(data),
            type(exc).__name__,
            exc,
        )
    written, failed = [], []
    for obj in data:
        try:
            (synced,) = mirror.objects_write(
                objects=[obj], started_at=started, expand=expand, product_features=False
            )
            written.append((obj, synced))
        except Exception as exc:  # recorded, reported, and the run goes on
            logger.exception("backfill could not write %s", obj.get("id"))
            failed.append((obj, f"{type(exc).__name__}: {exc}"))
    return written, failed


def _outcome(synced: mirror.Synced, obj: dict[str, Any]) -> str:
    if not synced.written:
        return "unchanged"  # the mirror already had a copy from a later fetch
    if synced.previous is None:
        return "created"
    return "unchanged" if compare.same(synced.previous, obj) else "updated"


# Types whose nested copies are expansions (or embedded copies) of mirrored objects.
