"""The local mirror of Stripe's objects (dj-stripe's models) and the one path that writes it.

- ``write``: fetch with no lock held, then write under the per-object lock, never an older
  copy over a newer one (the ordering guard), coalescing events a later fetch already served;
- ``locks``: the per-object lock; ``records``: one object's row through dj-stripe;
- ``djstripe``: the one place that bends dj-stripe (a batch's writes in a few statements);
- ``compare``: when two copies of an object say the same, and what changed between them.
"""

from billing.mirror.djstripe import owner_account_keep, owner_account_known
from billing.mirror.write import (
    EXPANSIONS,
    Fetched,
    Synced,
    coalesced,
    expansions,
    fetch_started,
    object_fetch,
    object_sync,
    object_write,
    objects_write,
    written_register,
)

__all__ = [
    "EXPANSIONS",
    "Fetched",
    "Synced",
    "coalesced",
    "expansions",
    "fetch_started",
    "object_fetch",
    "object_sync",
    "object_write",
    "objects_write",
    "owner_account_keep",
    "owner_account_known",
    "written_register",
]
