from django.apps import AppConfig
from django.core.signals import setting_changed


def _reconfigure_stripe(*, setting: str, **kwargs) -> None:
    if setting.startswith("STRIPE_"):
        from billing import stripe_api

        stripe_api.configure_module()


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing (Stripe)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing import checks, handlers, metadata, stripe_api  # noqa: F401 - registers checks, handlers

        stripe_api.configure_module()
        metadata.register_user_link()
        setting_changed.connect(_reconfigure_stripe, dispatch_uid="billing.reconfigure_stripe")
