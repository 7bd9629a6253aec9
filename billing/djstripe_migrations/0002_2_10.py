"""dj-stripe's migration 0002_2_10, as dj-stripe ships it (see this package's docstring)."""

from importlib import import_module

Migration = import_module("djstripe.migrations.0002_2_10").Migration
