from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing import mirror
        from orders import handlers, links, references  # noqa: F401 - handlers register themselves
        from orders.login import limits  # noqa: F401 - counts failed logins (a signal receiver)

        links.register()
        mirror.written_register(references.references_record)
