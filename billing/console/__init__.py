"""The support console's actions on Stripe objects: each checks the actor's permissions, goes to
Stripe first, writes the mirror from Stripe's answer through the one write path
(``billing.mirror``), and is audited (``audit``).

- ``metadata_edit``: edit an object's Stripe metadata safely;
- ``resync``: resync one object, or many as a background job;
- ``reprocess``: put chosen events back in the queue, or say why not;
- ``audit``: the audit log entry and Django's admin history of every action.
"""
