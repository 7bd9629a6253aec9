"""The shop's pages of the support console: orders with their whole story (``orders``), payments
as records (``payments``), refunds (``refunds``, the Refund page in ``refund_form``) and disputes
(``disputes``), accounts (``accounts``)."""

from orders.admin import (  # noqa: F401 - each registers its admins
    accounts,
    disputes,
    orders,
    payments,
    refunds,
)
