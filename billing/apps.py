from django.apps import AppConfig
from django.core.signals import setting_changed
from django.db.models.signals import post_delete, post_save


def _reconfigure_stripe(*, setting: str, **kwargs) -> None:
    if setting.startswith("STRIPE_"):
        from billing import stripe_api

        stripe_api.configure_module()


def _endpoint_changed(*, instance, **kwargs) -> None:
    from billing.webhooks import receivers

    receivers.receiver_cache.drop(instance.djstripe_uuid)


def _destination_changed(*, instance, **kwargs) -> None:
    from billing.webhooks import receivers

    receivers.receiver_cache.drop(instance.uuid)


class BillingConfig(AppConfig):
    name = "billing"
    # The name of its section on the admin index (``config.admin.SECTIONS``).
    verbose_name = "Webhooks and events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from djstripe.models import WebhookEndpoint

        from billing import checks, metadata, stripe_api  # noqa: F401 - registers the checks
        from billing.models import EventDestination
        from billing.webhooks import mirrored  # noqa: F401 - registers the mirrored types

        stripe_api.configure_module()
        metadata.register_user_link()
        setting_changed.connect(_reconfigure_stripe, dispatch_uid="billing.reconfigure_stripe")
        # Intake's endpoint cache forgets an endpoint this process saves or deletes.
        post_save.connect(
            _endpoint_changed, sender=WebhookEndpoint, dispatch_uid="billing.endpoint_saved"
        )
        post_delete.connect(
            _endpoint_changed, sender=WebhookEndpoint, dispatch_uid="billing.endpoint_deleted"
        )
        # ... and an event destination likewise.
        for signal, name in ((post_save, "saved"), (post_delete, "deleted")):
            signal.connect(
                _destination_changed,
                sender=EventDestination,
                dispatch_uid=f"billing.destination_{name}",
            )
