"""The per-object lock every writer of the mirror takes before reading and writing an object.

PostgreSQL: transaction-scoped advisory locks, taken in sorted order in one statement so two
writers of overlapping objects cannot deadlock, released at commit or rollback. SQLite (the
embedded default): transactions begin IMMEDIATE (see settings) and hold the database's single
write lock from BEGIN to COMMIT, so they are serialised already.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection


def take(stripe_ids: Iterable[str]) -> None:
    """The objects' locks, held until the transaction ends (call inside one)."""
    if connection.vendor == "postgresql" and stripe_ids:
        with connection.cursor() as cursor:
            # One statement; a function scan yields the array in its (sorted) order.
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(hashtextextended(id, 0)))"
                " FROM unnest(%s::text[]) AS id",
                [sorted(set(stripe_ids))],
            )
