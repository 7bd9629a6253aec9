"""A stateful Stripe API emulator spoken to over HTTP.

Tests, benchmarks and the demo reach it exactly as the product reaches Stripe: through
stripe-python pointed at its URL. Nothing in the product imports this package.
"""

DEFAULT_API_VERSION = "2026-08-26.dahlia"
