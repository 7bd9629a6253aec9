"""The only package that calls stripe-python.

Every call goes through ``policy.call``: one pinned API version, the key passed per client
(never module-global state of ours), an idempotency key on every POST (derived from the
business identity for creates, random otherwise, the same across retries), the one retry
policy (``retry_delay``: 429s, 409s, 5xx and timeouts, honouring Retry-After where sent), an
optional client-side rate limit (``throttle``), call counting, and ``StripeError`` turned into
``StripeAPIError`` with a message a person can act on.

stripe-python's own retries are off (they would retry inside ours, and do not retry Stripe's
rate-limit 429s: those carry no ``Stripe-Should-Retry``). dj-stripe's own fetches (related
objects during ``sync_from_stripe_data``) use stripe-python's module-level configuration,
which ``configure_module`` sets from the same settings, with an HTTP client that applies the
same limit and retry policy and counts them (as ``dj-stripe GET /v1/...``), so a caller sees
calls it did not make itself.

- ``errors``: the product's exceptions; ``sdk``: the client and stripe-python's module configuration;
  ``policy``: counting, limits, budgets, retries; ``calls``: the operations by object type;
  ``signatures``: webhook signatures and thin notifications; ``v2``: event destinations and
  v2 (thin) events.
"""

from billing.stripe_api.calls import (
    account,
    action,
    as_dict,
    as_stripe_object,
    create,
    delete,
    idempotency_key,
    list_all,
    list_page,
    list_page_data,
    list_pages,
    retrieve,
    update,
)
from billing.stripe_api.errors import (
    StripeAPIError,
    StripeCardError,
    StripeNotConfigured,
    StripeNotFound,
)
from billing.stripe_api.policy import (
    call_counts,
    calls_total,
    customer_facing,
    retry_delay,
    thread_calls,
    throttle,
)
from billing.stripe_api.sdk import client, configure_module
from billing.stripe_api.signatures import (
    SignatureInvalid,
    event_notification,
    signature_header,
    signature_verify,
)

__all__ = [
    "SignatureInvalid",
    "StripeAPIError",
    "StripeCardError",
    "StripeNotConfigured",
    "StripeNotFound",
    "account",
    "action",
    "as_dict",
    "as_stripe_object",
    "call_counts",
    "calls_total",
    "client",
    "configure_module",
    "create",
    "customer_facing",
    "delete",
    "event_notification",
    "idempotency_key",
    "list_all",
    "list_page",
    "list_page_data",
    "list_pages",
    "retrieve",
    "retry_delay",
    "signature_header",
    "signature_verify",
    "thread_calls",
    "throttle",
    "update",
]
