"""The shop's pages of the support console: orders with their whole story (``orders``), payments
as records (``payments``), accounts (``accounts``)."""

from orders.admin import accounts, orders, payments  # noqa: F401 - each registers its admins
