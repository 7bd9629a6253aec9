"""Stripe's webhooks, from the delivery to the business handler.

The path of one event: ``views.webhook`` (the URL) → ``intake.delivery_accept`` (verify with
the endpoint's secrets, store once, count a refusal) → ``queue.event_enqueue`` (publish its
task on commit; ``queue.events_requeue`` for what no task works on) → ``processing.process``
(claim, re-fetch through ``billing.mirror``, run the handler ``registry`` holds for its type).

- ``registry``: handlers by event type, expansions by object type; ``mirrored``: the types kept
  current without a business handler;
- ``endpoints``: create, read, rotate a secret; ``upgrade``: sync, upgrade and retire as code;
  ``versions``: the API versions in play;
- ``traffic``: deliveries counted by the hour; ``retention``: the log kept for its period.
"""
