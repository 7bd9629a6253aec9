"""dj-stripe's migration 0003_2_11, as dj-stripe ships it (see this package's docstring)."""

from importlib import import_module

Migration = import_module("djstripe.migrations.0003_2_11").Migration
