"""Tie every Stripe id the mirror holds to its order: once, after upgrading a shop that had
orders before the order references existed (``orders.OrderReference``; the mirror's writers
keep them from then on). Reads in batches, locking nothing it reads; safe to run again."""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand

from orders.references import FILL_BATCH, references_fill

PLAIN_EVERY = 10.0  # seconds between progress lines when not on a terminal


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=FILL_BATCH)

    def handle(self, *args, batch_size: int, **options):
        tty = sys.stdout.isatty() and options["verbosity"] > 0
        bars: dict[str, object] = {}
        last_line = [0.0]

        def progress(label: str, done: int, total: int) -> None:
            if tty:
                from tqdm import tqdm

                bar = bars.get(label)
                if bar is None:
                    bar = bars[label] = tqdm(total=total, desc=label, unit="row", leave=True)
                bar.update(done - bar.n)
                if done >= total:
                    bar.close()
            elif options["verbosity"] > 0 and (
                done >= total or time.monotonic() - last_line[0] >= PLAIN_EVERY
            ):
                last_line[0] = time.monotonic()
                self.stdout.write(f"{label}: up to row {done:,} of {total:,}")

        added = references_fill(batch_size=batch_size, progress=progress)
        self.stdout.write(self.style.SUCCESS(f"{added:,} order references added."))
