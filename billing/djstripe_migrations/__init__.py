"""dj-stripe's migrations, plus one squash of them for a fresh database.

dj-stripe 2.11 reaches its schema in three migrations, the second of which removes 514 fields
one by one (what 2.10 moved into ``stripe_data``). Django re-renders the models related to a
field at each removal, so on an empty database ``migrate`` spent over a minute of CPU in that one
migration. ``0001_squashed_0003_2_11`` is Django's own ``squashmigrations`` of the three: it
``replaces`` them, so a database that has them applied (every existing deployment) sees it as
applied and migrates exactly as before, and an empty database applies the squash instead, creating
the same tables, columns and indexes directly.

The three originals are dj-stripe's own classes, imported, not copies (``MIGRATION_MODULES`` in
the settings points the ``djstripe`` app here). When dj-stripe ships a migration this package does
not list, ``manage.py check`` fails with what to add (``billing.checks``).
"""
