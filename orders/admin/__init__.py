"""The shop's pages of the support console: orders with their whole story (``orders``), payments
as records (``payments``), refunds (``refunds``, the Refund page in ``refund_form``) and disputes
(``disputes``), accounts (``accounts``), and what the shop adds to the console's front page
and customer pages (``work``)."""

from orders.admin import (  # noqa: F401 - each registers its admins
    accounts,
    disputes,
    orders,
    payments,
    refunds,
    work,
)
