"""Mirror Stripe's objects into the local database, resumably, at the API's limit."""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from billing.management.options import parse_when, split_types
from billing.models import BackfillFailure
from billing.operators import backfill, backfill_pages

RESUME = "manage.py stripe_backfill --resume"
PLAIN_EVERY = 10.0  # seconds between progress lines when not on a terminal
FAILURES_SHOWN = 50


class Progress:
    """A bar per type (count, rate, ETA) on a terminal; a line every few seconds otherwise.

    Stripe's lists give no totals, so how far a type has got is read from time: pages come
    newest first, and the last object's ``created`` walks back from now towards ``--since``
    (or the account's creation). The ETA is that fraction's; count and rate are objects.
    """

    def __init__(self, out, *, tty: bool):
        self.out = out
        self.tty = tty
        self.bar = None
        self.bar_type = None
        self.last_line = 0.0

    def __call__(self, page: backfill.PageDone) -> None:
        now = time.time()
        span = max(page.top - page.floor, 1)
        reached = page.floor if page.done else (page.reached or page.top)
        fraction = min(max((page.top - reached) / span, 0.0), 1.0)
        elapsed = max(now - page.top, 1e-3)
        rate = page.total / elapsed
        if self.tty:
            self._bar(page, fraction, rate)
        elif page.done or now - self.last_line >= PLAIN_EVERY:
            self.last_line = now
            if page.done:
                state = "done"
            elif fraction >= 0.01:
                left = elapsed * (1 - fraction) / fraction
                state = f"{fraction:.0%} of the time span, about {left:,.0f} s left"
            else:  # everything so far is recent: too early for an estimate
                state = f"back to {time.strftime('%Y-%m-%d %H:%M', time.gmtime(reached))} UTC"
            self.out.write(
                f"{page.object_type}: {page.total:,} objects ({rate:,.0f}/s), "
                f"{page.counts['api_calls']} API calls, {state}"
            )

    def _bar(self, page, fraction: float, rate: float) -> None:
        from tqdm import tqdm

        if self.bar_type != page.object_type:
            self.close()
            self.bar = tqdm(
                total=1000,
                bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
                file=sys.stderr,
                leave=True,
            )
            self.bar_type = page.object_type
        self.bar.set_description_str(
            f"{page.object_type:>16} {page.total:>9,} objects {rate:>6,.0f}/s", refresh=False
        )
        self.bar.update(round(fraction * 1000) - self.bar.n)
        if page.done:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            self.bar_type = None


class Command(BaseCommand):
    help = (
        "Mirror Stripe objects into the local database: pages of 100 with expansions, in "
        "dependency order, through the one mirror write path, linked to orders and users. "
        "Checkpointed after every page; --resume goes on after an interruption."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--types",
            nargs="+",
            metavar="TYPE",
            help=f"object types (default: all, in this order): {', '.join(backfill.TYPES)}",
        )
        parser.add_argument("--since", help="only objects created since DATE (2024-01-31)")
        parser.add_argument(
            "--resume", action="store_true", help="go on with the last run that did not finish"
        )
        parser.add_argument(
            "--max-rps",
            type=float,
            default=20.0,
            help="requests per second at most (default 20, under test mode's 25)",
        )
        parser.add_argument(
            "--writers",
            type=int,
            help="processes writing pages side by side (default: one per CPU, at most "
            f"{backfill_pages.WRITERS_MAX}, on PostgreSQL; 1 on SQLite)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="read Stripe and report, write nothing"
        )

    def handle(self, *args, types, since, resume, max_rps, writers, dry_run, **options):
        types = split_types(types)
        since_at = parse_when(since) if since else None
        progress = Progress(self.stdout, tty=sys.stderr.isatty())
        try:
            if dry_run:
                if resume:
                    raise CommandError("--dry-run writes nothing, so there is nothing to resume.")
                counts = backfill.backfill_dry_run(
                    types=types, since=since_at, max_rps=max_rps, report=progress
                )
                progress.close()
                self._summary(counts, title="Dry run: nothing was written")
                return
            run = self._run_for(resume=resume, types=types, since=since_at, max_rps=max_rps)
            self.stdout.write(
                f"Backfill #{run.pk}: {', '.join(run.types)} at most {run.max_rps:g} requests/s"
                + (f", objects created since {run.since:%Y-%m-%d %H:%M}" if run.since else "")
            )
            run = backfill.backfill_run(run=run, report=progress, writers=writers)
        except backfill.BackfillError as exc:
            progress.close()
            raise CommandError(
                f"{exc.message}\nWhat was written is kept; resume with: {RESUME}"
            ) from None
        except KeyboardInterrupt:
            progress.close()
            self.stderr.write(
                "\nInterrupted. Every page written so far is kept and checkpointed; "
                f"resume with: {RESUME}"
            )
            sys.exit(130)
        progress.close()
        self._summary(backfill.run_counts(run), title=f"Backfill #{run.pk} completed")
        self._failures(run)

    def _run_for(self, *, resume, types, since, max_rps):
        if not resume:
            try:
                return backfill.backfill_start(types=types, since=since, max_rps=max_rps)
            except backfill.BackfillError as exc:
                raise CommandError(exc.message) from None
        run = backfill.backfill_resumable()
        if run is None:
            raise CommandError("Nothing to resume: the last backfill completed (or none ran).")
        other_types = bool(types) and backfill.types_ordered(types) != run.types
        if other_types or (since is not None and since != run.since):
            raise CommandError(
                f"--resume continues run #{run.pk} as it was started ({', '.join(run.types)}"
                f"{', since ' + str(run.since) if run.since else ''}); drop --types/--since."
            )
        return run

    def _summary(self, counts: dict[str, dict[str, int]], *, title: str) -> None:
        columns = backfill.COUNTS
        self.stdout.write(f"\n{title}")
        header = f"{'type':<18}" + "".join(f"{c.replace('_', ' '):>11}" for c in columns)
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        totals = dict.fromkeys(columns, 0)
        for object_type, row in counts.items():
            self.stdout.write(f"{object_type:<18}" + "".join(f"{row[c]:>11,}" for c in columns))
            for c in columns:
                totals[c] += row[c]
        self.stdout.write(f"{'total':<18}" + "".join(f"{totals[c]:>11,}" for c in columns))

    def _failures(self, run) -> None:
        failures = BackfillFailure.objects.filter(run=run)
        count = failures.count()
        if not count:
            return
        self.stderr.write(f"\n{count} object(s) could not be written:")
        for failure in failures[:FAILURES_SHOWN]:
            self.stderr.write(f"  {failure.object_type} {failure.stripe_id}: {failure.error}")
        if count > FAILURES_SHOWN:
            self.stderr.write(f"  ... and {count - FAILURES_SHOWN} more (admin: backfill runs)")
        raise CommandError(f"backfill #{run.pk}: {count} object(s) failed")
