"""Migration operations for indexes on tables that may already hold millions of rows.

A plain ``CREATE INDEX`` blocks writes to its table until it is built: webhook intake and
checkout would wait for minutes on a big shop. On PostgreSQL these build the index
``CONCURRENTLY`` (the migration must say ``atomic = False``; writes go on meanwhile); SQLite (the
demo) builds it as usual. ``IndexesSQL`` is for indexes Django's ``Index`` cannot state: on
another app's table (dj-stripe's, ``auth_user``) or with PostgreSQL's pattern operators, which
let ``LIKE 'prefix%'`` use the index whatever the database's collation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import migrations


def _concurrently(schema_editor) -> bool:
    connection = schema_editor.connection
    return connection.vendor == "postgresql" and not connection.in_atomic_block


class AddIndexOnline(migrations.AddIndex):
    """``AddIndex``, built without blocking writes on PostgreSQL (outside a transaction)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if _concurrently(schema_editor):
            schema_editor.add_index(model, self.index, concurrently=True)
        else:
            schema_editor.add_index(model, self.index)


@dataclass(frozen=True)
class IndexSQL:
    """One index: its name, its table, and what it covers on each database (``None``: none
    there). Columns are SQL, e.g. ``LOWER(email) text_pattern_ops``."""

    name: str
    table: str
    postgresql: str | None
    sqlite: str | None = None

    def create(self, vendor: str, *, concurrently: bool = False) -> str | None:
        columns = getattr(self, vendor, None)
        if columns is None:
            return None
        how = "CONCURRENTLY " if concurrently else ""
        return f"CREATE INDEX {how}IF NOT EXISTS {self.name} ON {self.table} ({columns})"

    def drop(self, vendor: str) -> str | None:
        return None if getattr(self, vendor, None) is None else f"DROP INDEX IF EXISTS {self.name}"


def indexes_create(connection, indexes: Iterable[IndexSQL]) -> None:
    """Create ``indexes`` on ``connection`` now (the test database, built without migrations)."""
    with connection.cursor() as cursor:
        for index in indexes:
            if sql := index.create(connection.vendor):
                cursor.execute(sql)


class IndexesSQL(migrations.operations.base.Operation):
    """Create (and, backwards, drop) indexes stated in SQL, per database."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, indexes: Iterable[IndexSQL]):
        self.indexes = tuple(indexes)

    def state_forwards(self, app_label, state):
        pass  # the models do not know these indexes; nothing in Django's state changes

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        vendor = schema_editor.connection.vendor
        for index in self.indexes:
            if sql := index.create(vendor, concurrently=_concurrently(schema_editor)):
                schema_editor.execute(sql)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        vendor = schema_editor.connection.vendor
        for index in self.indexes:
            if sql := index.drop(vendor):
                schema_editor.execute(sql)

    def describe(self) -> str:
        return f"Create indexes {', '.join(index.name for index in self.indexes)}"

    def deconstruct(self):
        return self.__class__.__qualname__, [self.indexes], {}
