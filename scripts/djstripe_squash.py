"""Write billing/djstripe_migrations/0001_squashed_0003_2_11.py: dj-stripe's schema after its
own migrations, as one migration that creates it directly.

Run from the repository: ``.venv/bin/python scripts/djstripe_squash.py``. It reads the state
dj-stripe's migrations end in (not the models), and writes what ``makemigrations`` writes for a
new app reaching that state: CreateModel for each model, AddField where models refer to each
other. ``manage.py squashmigrations`` keeps 115 of the 514 field removals (it cannot fold a
removal into its CreateModel across the operations between them), which leaves most of the cost.
tests/billing/test_djstripe_migrations.py checks that the result ends in the same state.
"""

import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPLACES = [("djstripe", "0001_initial"), ("djstripe", "0002_2_10"), ("djstripe", "0003_2_11")]
NAME = "0001_squashed_0003_2_11"


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db.migrations.autodetector import MigrationAutodetector
    from django.db.migrations.graph import MigrationGraph
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.questioner import NonInteractiveMigrationQuestioner
    from django.db.migrations.writer import MigrationWriter

    loader = MigrationLoader(None, ignore_no_migrations=True, replace_migrations=False)
    final = loader.project_state(REPLACES[-1], at_end=True)
    empty = final.clone()
    for key in [key for key in empty.models if key[0] == "djstripe"]:
        del empty.models[key]
    detector = MigrationAutodetector(empty, final, NonInteractiveMigrationQuestioner())
    # _detect_changes, not changes(): one migration, not numbered after the app's leaf node
    (migration,) = detector._detect_changes(convert_apps={"djstripe"}, graph=MigrationGraph())[
        "djstripe"
    ]
    migration.name, migration.initial, migration.replaces = NAME, True, REPLACES
    path = ROOT / "billing" / "djstripe_migrations" / f"{NAME}.py"
    path.write_text(MigrationWriter(migration).as_string())
    counts = Counter(type(operation).__name__ for operation in migration.operations)
    print(f"wrote {path.relative_to(ROOT)}: {dict(counts)}")


if __name__ == "__main__":
    main()
