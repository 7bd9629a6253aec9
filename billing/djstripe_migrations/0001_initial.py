"""dj-stripe's migration 0001_initial, as dj-stripe ships it (see this package's docstring)."""

from importlib import import_module

Migration = import_module("djstripe.migrations.0001_initial").Migration
