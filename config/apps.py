"""App configs for third-party apps whose defaults read wrong to the people using the admin."""

from djstripe.apps import DjstripeAppConfig


class StripeMirrorConfig(DjstripeAppConfig):
    """dj-stripe, named as support sees it (breadcrumbs and the app page said "Djstripe"): the
    name of its section on the admin index (``config.admin.SECTIONS``)."""

    verbose_name = "Customers and payments"
