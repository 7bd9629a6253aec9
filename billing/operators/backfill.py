"""Backfill the dj-stripe mirror from Stripe's lists (``manage.py stripe_backfill``).

Each type is listed 100 to a page, newest first, with the expansions that bring the related
objects dj-stripe would otherwise retrieve one by one (within Stripe's four levels), in an
order where parents are mirrored before the children that point at them. Each page is written
through the one mirror write path (``billing.mirror.objects_write``: never older over newer),
its objects linked to orders and users through their metadata link keys, and recorded with
the type's checkpoint (cursor and counts), all in one transaction: a run killed at any moment
resumes after its last written page, with no gap and nothing counted twice.

Pages are listed on a thread of their own, a few ahead of the writes and across types
(``_Listing``), and written by processes side by side on PostgreSQL ("Page writers" below),
so that writing keeps up with the API's limit and the limit alone sets the pace. Each page counts the API calls made for it: its list request, on the fetch
thread, and any made writing it. Memory stays flat: a few pages in hand; failures and counts
live in the database.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from billing import metadata, mirror, stripe_api
from billing import types as stripe_types
from billing.mirror import compare
from billing.models import BackfillPage, BackfillProgress, BackfillRun
from billing.operators.backfill_pages import (
    BACKFILL_RETRIES,
    BY_TYPE,
    COUNTS,
    TYPES,
    BackfillError,
    Page,
    Writers,
    page_task,
    page_writers,
    writers_default,
)

logger = logging.getLogger(__name__)


def types_ordered(types: Iterable[str] | None) -> list[str]:
    """The requested types in dependency order (all of them when none are named)."""
    if not types:
        return list(TYPES)
    unknown = sorted(set(types) - set(TYPES))
    if unknown:
        raise BackfillError(
            f"Unknown type(s): {', '.join(unknown)}. Choose from: {', '.join(TYPES)}."
        )
    return [t for t in TYPES if t in set(types)]


# --- Progress reporting ---------------------------------------------------------------------


@dataclass(frozen=True)
class PageDone:
    """Told to the caller after each page: enough for a bar with count, rate and ETA."""

    object_type: str
    objects: int  # in this page
    total: int  # of this type so far in the run (resumed parts included)
    reached: int | None  # `created` of the page's last (oldest) object
    floor: int  # how far back the type goes: --since, or the account's creation
    top: float  # when the type's listing started (time.time())
    counts: dict[str, int]
    done: bool


Reporter = Callable[[PageDone], None]


# --- Runs -----------------------------------------------------------------------------------


def backfill_start(*, types: Iterable[str] | None, since: datetime | None, max_rps: float):
    """A new run: one checkpoint per type, in dependency order."""
    ordered = types_ordered(types)
    if max_rps <= 0:
        raise BackfillError("--max-rps must be more than 0.")
    with transaction.atomic():
        run = BackfillRun.objects.create(types=ordered, since=since, max_rps=max_rps)
        BackfillProgress.objects.bulk_create(
            BackfillProgress(run=run, object_type=t, position=n) for n, t in enumerate(ordered)
        )
    return run


def backfill_resumable() -> BackfillRun | None:
    """The latest run that did not complete (killed, interrupted or stopped on an error)."""
    latest = BackfillRun.objects.first()
    if latest is None or latest.status == BackfillRun.Status.COMPLETED:
        return None
    return latest


def backfill_run(
    *, run: BackfillRun, report: Reporter | None = None, writers: int | None = None
) -> BackfillRun:
    """Mirror every type of ``run`` from its checkpoint on; return the run, completed.

    ``writers``: processes writing pages side by side (``writers_default()`` when None).

    Ctrl-C (KeyboardInterrupt) marks the run interrupted and propagates, once the pages being
    written are; an API error that outlasts the retries marks it failed and raises
    ``BackfillError``. Either way every page written is checkpointed, and ``--resume`` goes
    on from there.
    """
    BackfillRun.objects.filter(pk=run.pk).update(
        status=BackfillRun.Status.RUNNING, finished_at=None, stopped_reason=""
    )
    floor = int(run.since.timestamp()) if run.since else None
    try:
        with (
            stripe_api.throttle(max_rps=run.max_rps, retries=BACKFILL_RETRIES),
            page_writers(writers_default() if writers is None else writers) as write,
        ):
            key = settings.STRIPE_SECRET_KEY
            if floor is None or not mirror.owner_account_known(api_key=key):
                # One request for the run: dj-stripe, writing the first page, would retrieve
                # the key's account itself (twice), and it bounds how far back types go.
                account = stripe_api.account()
                mirror.owner_account_keep(account=account, api_key=key)
                floor = int(account.created) if floor is None else floor
            todo = list(run.progress.filter(done=False).order_by("position"))
            with _Listing(run, todo, ahead=write.ahead + 1) as listing:
                for progress in todo:
                    _type_run(
                        run=run,
                        progress=progress,
                        floor=floor,
                        report=report,
                        listing=listing,
                        write=write,
                    )
    except KeyboardInterrupt:
        _stop(run, BackfillRun.Status.INTERRUPTED, "interrupted (Ctrl-C)")
        raise
    except stripe_api.StripeAPIError as exc:
        _stop(run, BackfillRun.Status.FAILED, exc.message)
        raise BackfillError(exc.message) from exc
    BackfillRun.objects.filter(pk=run.pk).update(
        status=BackfillRun.Status.COMPLETED, finished_at=timezone.now()
    )
    run.refresh_from_db()
    return run


def _stop(run: BackfillRun, status: str, reason: str) -> None:
    BackfillRun.objects.filter(pk=run.pk).update(
        status=status, finished_at=timezone.now(), stopped_reason=reason[:2000]
    )


def _list_params(source: stripe_types.StripeType, since: datetime | None) -> dict[str, Any]:
    params: dict[str, Any] = dict(source.list_params)
    if source.list_expand:
        params["expand"] = list(source.list_expand)
    if since is not None:
        params["created"] = {"gte": int(since.timestamp())}
    return params


def _fetch(source: stripe_types.StripeType, params: dict[str, Any], after: str | None) -> Page:
    calls_at = stripe_api.thread_calls()
    page = stripe_api.list_page_data(object_type=source.name, params=params, starting_after=after)
    return Page(page["data"], bool(page["has_more"]), stripe_api.thread_calls() - calls_at)


@dataclass(frozen=True)
class _Listed:
    """A page as the fetch thread hands it over: after which cursor it was listed, and when
    its fetch started (the database's clock, read just before: what the ordering guard
    compares). No page: the cursor is gone (its object deleted since), and the type is
    listed again from the start."""

    after: str | None
    started: datetime
    page: Page | None


class _Listing:
    """The pages of every type of a run, in order, fetched on a thread of their own as far
    ahead of the writes as ``ahead`` pages (memory stays flat), so that waiting for a write
    (or for every page of a type, before the next) never keeps a request from starting."""

    def __init__(self, run: BackfillRun, todo: list[BackfillProgress], *, ahead: int):
        self.run, self.todo = run, todo
        self.queue: queue.Queue[_Listed | BaseException] = queue.Queue(maxsize=ahead)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._list, name="backfill-fetch", daemon=True)

    def __enter__(self) -> _Listing:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self.thread.join()

    def next(self) -> _Listed:
        item = self.queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def _list(self) -> None:
        try:
            for progress in self.todo:
                source = BY_TYPE[progress.object_type]
                params = _list_params(source, self.run.since)
                after = progress.cursor or None
                while not self.stopping.is_set():
                    started = mirror.fetch_started()
                    try:
                        page = _fetch(source, params, after)
                    except stripe_api.StripeAPIError as exc:
                        if not (after and exc.code == "resource_missing"):
                            raise
                        logger.warning(
                            "%s: cursor %s rejected (%s); listing from the start",
                            source.name,
                            after,
                            exc.message,
                        )
                        self._put(_Listed(after, started, None))
                        after = None
                        continue
                    self._put(_Listed(after, started, page))
                    if not (page.has_more and page.data):
                        break
                    after = page.data[-1]["id"]
        except BaseException as exc:  # the run's to handle, where it takes the next page
            self._put(exc)
        finally:
            connection.close()  # this thread's own (the clock)

    def _put(self, item: _Listed | BaseException) -> None:
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue


def _type_run(
    *,
    run: BackfillRun,
    progress: BackfillProgress,
    floor: int,
    report: Reporter | None,
    listing: _Listing,
    write: Writers,
) -> None:
    """Write one type's pages as they are listed, as many at once as there are writers.
    Every page of the type is written before this returns (its children's pages find their
    parents' rows)."""
    source = BY_TYPE[progress.object_type]
    top = time.time()
    writing: deque[tuple[Future[BackfillProgress | None], Page, bool]] = deque()
    latest: BackfillProgress | None = None  # the type's progress as last committed
    last = False
    while not last:
        listed = listing.next()
        if listed.page is None:  # listed again from the start
            while writing:
                writing.popleft()[0].result()
            progress = _restart(progress)
            continue
        page = listed.page
        last = not (page.has_more and page.data)
        future = write.submit(page_task, run, progress, page, listed.after, listed.started, last)
        writing.append((future, page, last))
        while writing and (len(writing) > write.ahead or last):
            future, written_page, written_last = writing.popleft()
            written = future.result()
            if written is None or report is None:
                continue
            # Pages commit in any order: the counts are the latest commit's.
            latest = written if latest is None or written.pages > latest.pages else latest
            report(
                PageDone(
                    object_type=source.name,
                    objects=len(written_page.data),
                    total=latest.created + latest.updated + latest.unchanged + latest.errors,
                    reached=written_page.data[-1].get("created") if written_page.data else None,
                    floor=floor,
                    top=top,
                    counts={name: getattr(latest, name) for name in COUNTS},
                    done=written_last,  # every page of the type written
                )
            )


def _restart(progress: BackfillProgress) -> BackfillProgress:
    with transaction.atomic():
        BackfillProgress.objects.filter(pk=progress.pk).update(
            cursor="", pages=0, **{name: 0 for name in COUNTS}
        )
        BackfillPage.objects.filter(progress=progress).delete()
    progress.refresh_from_db()
    return progress


# --- Dry run --------------------------------------------------------------------------------


def backfill_dry_run(
    *,
    types: Iterable[str] | None,
    since: datetime | None,
    max_rps: float,
    report: Reporter | None = None,
) -> dict[str, dict[str, int]]:
    """What a backfill would do, writing nothing: per type, objects it would create, update
    or leave, and how their link keys resolve. Reads Stripe at the same cost as a backfill."""
    counts: dict[str, dict[str, int]] = {}
    with stripe_api.throttle(max_rps=max_rps, retries=BACKFILL_RETRIES):
        floor = int(since.timestamp()) if since else int(stripe_api.account().created)
        for object_type in types_ordered(types):
            source = BY_TYPE[object_type]
            tally = counts[object_type] = dict.fromkeys(COUNTS, 0)
            model = stripe_types.model_for(object_type)
            top, calls_at = time.time(), stripe_api.calls_total()
            pages = stripe_api.list_pages(
                object_type=object_type, params=_list_params(source, since)
            )
            for page in pages:
                data, has_more = page["data"], page["has_more"]
                stored = dict(
                    model.objects.filter(id__in=[o["id"] for o in data]).values_list(
                        "id", "stripe_data"
                    )
                )
                with transaction.atomic():
                    for obj in data:
                        previous = stored.get(obj["id"])
                        outcome = (
                            "created"
                            if previous is None
                            else "unchanged"
                            if compare.same(previous, obj)
                            else "updated"
                        )
                        tally[outcome] += 1
                        status = metadata.link_keep(obj=obj, write=False)
                        if status != "none":
                            tally[status] += 1
                    transaction.set_rollback(True)  # resolving locks orders; change nothing
                tally["api_calls"] = stripe_api.calls_total() - calls_at
                done = not (has_more and data)
                if report is not None:
                    report(
                        PageDone(
                            object_type=object_type,
                            objects=len(data),
                            total=tally["created"] + tally["updated"] + tally["unchanged"],
                            reached=data[-1].get("created") if data else None,
                            floor=floor,
                            top=top,
                            counts=dict(tally),
                            done=done,
                        )
                    )
    return counts


def run_counts(run: BackfillRun) -> dict[str, dict[str, int]]:
    """Per type, the counts of a run (resumed parts summed), in dependency order."""
    return {
        p.object_type: {name: getattr(p, name) for name in COUNTS}
        for p in run.progress.order_by("position")
    }
