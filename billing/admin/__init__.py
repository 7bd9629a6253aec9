"""The support console: Django's admin, made the product's own.

- ``base``: the read-only base, lists that cost the same at any size, links between pages;
- ``stripe_objects``: the shared page of a mirrored Stripe object; ``stripe_types``: each type's;
- ``inbox``: events, deliveries, refusals, sync states, the audit log, resync jobs;
- ``operators``: backfill runs and reconcile reports; ``versions``: the API versions page;
- ``destinations``: event destinations (thin events), with a ping;
- ``views``: the console's actions on an object (resync, reprocess, fetch missed events);
  ``metadata_form``: editing its Stripe metadata.
"""

from billing.admin import (  # noqa: F401 - each registers its admins
    destinations,
    inbox,
    operators,
    stripe_types,
)
