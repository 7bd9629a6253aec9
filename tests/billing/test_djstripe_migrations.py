"""dj-stripe's migrations with one squash of them (billing/djstripe_migrations): an empty database
applies the squash, a database that has dj-stripe's migrations applied migrates as before, and
the squash ends where dj-stripe's own migrations end."""

import pytest
from django.core import checks
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

ORIGINALS = [("djstripe", "0001_initial"), ("djstripe", "0002_2_10"), ("djstripe", "0003_2_11")]
SQUASH = ("djstripe", "0001_squashed_0003_2_11")


@pytest.fixture(autouse=True)
def _real_migration_modules(settings):
    # The suite runs with --no-migrations, which maps every app's migrations to none.
    settings.MIGRATION_MODULES = {"djstripe": "billing.djstripe_migrations"}


def plan(monkeypatch, applied: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """What ``migrate`` would apply to a database that has ``applied`` (and every migration of
    the other apps) recorded."""
    disk = MigrationLoader(None, ignore_no_migrations=True, replace_migrations=False)
    others = [key for key in disk.disk_migrations if key[0] != "djstripe"]
    recorded = {key: None for key in [*others, *applied]}
    monkeypatch.setattr(MigrationRecorder, "applied_migrations", lambda self: recorded)
    executor = MigrationExecutor(connection)
    steps = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [(m.app_label, m.name) for m, _backwards in steps]


def test_an_empty_database_applies_the_squash_alone(monkeypatch):
    steps = plan(monkeypatch, applied=[])
    djstripe = [key for key in steps if key[0] == "djstripe"]
    assert djstripe == [SQUASH]


def test_a_database_with_dj_stripes_migrations_applied_has_nothing_to_apply(monkeypatch):
    assert plan(monkeypatch, applied=ORIGINALS) == []


def test_a_database_part_way_applies_dj_stripes_own_remaining_migrations(monkeypatch):
    assert plan(monkeypatch, applied=ORIGINALS[:1]) == ORIGINALS[1:]


def test_the_squash_ends_where_dj_stripes_migrations_end():
    originals = MigrationLoader(None, ignore_no_migrations=True, replace_migrations=False)
    squashed = MigrationLoader(None, ignore_no_migrations=True)
    assert SQUASH in squashed.graph.nodes and ORIGINALS[-1] not in squashed.graph.nodes
    want = originals.project_state(ORIGINALS[-1], at_end=True)
    got = squashed.project_state(SQUASH, at_end=True)
    names = sorted(name for app, name in want.models if app == "djstripe")
    assert names == sorted(name for app, name in got.models if app == "djstripe")
    assert len(names) > 50
    for name in names:
        assert got.models["djstripe", name] == want.models["djstripe", name], name


def test_check_names_a_dj_stripe_migration_the_package_lacks(db, settings, tmp_path, monkeypatch):
    package = tmp_path / "partial_djstripe_migrations"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "0001_initial.py").write_text(
        "from importlib import import_module\n\n"
        'Migration = import_module("djstripe.migrations.0001_initial").Migration\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.MIGRATION_MODULES = {"djstripe": "partial_djstripe_migrations"}
    errors = [m for m in checks.run_checks(tags=["stripe"]) if m.id == "billing.E011"]
    assert len(errors) == 1
    assert "0002_2_10, 0003_2_11" in errors[0].msg

    settings.MIGRATION_MODULES = {"djstripe": "billing.djstripe_migrations"}
    assert not [m for m in checks.run_checks(tags=["stripe"]) if m.id == "billing.E011"]
