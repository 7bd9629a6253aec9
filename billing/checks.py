"""System checks for the Stripe configuration (run by `manage.py check`, `--deploy` in CI)."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def check_stripe_configuration(app_configs=None, **kwargs):
    messages = []
    key = settings.STRIPE_SECRET_KEY
    if not key:
        messages.append(
            checks.Error(
                "STRIPE_SECRET_KEY is not set.",
                hint="Set it in the environment to the account's secret key (sk_live_... or sk_test_...).",
                id="billing.E001",
            )
        )
    elif not key.startswith(("sk_", "rk_")):
        messages.append(
            checks.Error(
                "STRIPE_SECRET_KEY is not a secret or restricted key.",
                hint="Publishable keys (pk_...) cannot call the API; use the secret key.",
                id="billing.E002",
            )
        )
    if settings.STRIPE_API_BASE and not settings.DEBUG:
        messages.append(
            checks.Warning(
                f"STRIPE_API_BASE points the product at {settings.STRIPE_API_BASE}, not Stripe.",
                hint="Unset STRIPE_API_BASE in production; it exists for the emulator.",
                id="billing.W001",
            )
        )
    return messages
