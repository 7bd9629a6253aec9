"""Plans: a subscription product a customer holds once, unless the catalog says otherwise.

A *plan* is a product sold through a recurring price; its prices (monthly, yearly) are the
same plan. A customer holds it at most once: the catalog shows "Your plan" instead of
Subscribe, and a second checkout is refused here, at the service, not only hidden. A product
whose Stripe metadata has ``allow_multiple=true`` (seats, gifts) may be held several times.

A customer *holds* a plan while (either is enough; Stripe may be ahead of the mirror, or a
subscription may have been made in the Dashboard without an order):

- one of their subscription orders of it is paid or its payment is settling, and its
  subscription, when mirrored, has not ended (a refunded order whose subscription still runs
  holds it too);
- a subscription of their Stripe customer in the mirror has an item of the product and has
  not ended (``incomplete`` counts: its first payment is settling).

A customer's unpaid order of the plan is reused when they subscribe again at the same price
(two tabs, two buy buttons pressed at once start one Checkout), and replaced for another
price; ``orders.services.checkout`` decides under the user's row lock (``user_lock``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Max
from djstripe.models import Price, Subscription, SubscriptionItem

from orders import wording
from orders.models import PAYABLE, Order, OrderItem
from orders.services.state import CheckoutError, S

PLAN_HELD = "You already subscribe to {plan}, so it was not bought again."
PLAN_MANAGE = " You can manage your plan on this page."
# The product metadata key (and value) that lets a customer hold a plan several times.
ALLOW_MULTIPLE_KEY = "allow_multiple"
# Stripe's subscription statuses that no longer bill; every other status holds the plan.
ENDED = ("canceled", "incomplete_expired")
LIVE = ("active", "trialing", "past_due", "unpaid", "incomplete", "paused")
# Orders that may hold their plan (their subscription decides, when it is mirrored).
HOLDING_STATES = (S.PAYMENT_PROCESSING, S.PAID, S.FULFILLED, S.PARTIALLY_REFUNDED, S.REFUNDED)


def allows_multiple(product_data: dict[str, Any] | None) -> bool:
    value = ((product_data or {}).get("metadata") or {}).get(ALLOW_MULTIPLE_KEY, "")
    return str(value).strip().lower() in ("true", "yes", "1")


def plan_of(price: Price) -> str | None:
    """The plan (product id) ``price`` sells, or None: one-time, or the product allows several."""
    if not (price.stripe_data or {}).get("recurring"):
        return None
    return None if allows_multiple(price.product.stripe_data) else price.product_id


@dataclass(frozen=True)
class Holding:
    """A plan the customer holds: the price, the order whose page manages it (None for a
    subscription made outside the shop), and whether its payment is still settling."""

    product_id: str
    price_id: str
    order_public_id: str | None
    settling: bool


def _price_products(subscription: dict[str, Any]) -> list[tuple[str, str]]:
    """(product id, price id) of each item of a subscription as Stripe has it."""
    found = []
    for item in ((subscription.get("items") or {}).get("data")) or []:
        price = item.get("price") or {}
        product = price.get("product")
        product = product.get("id") if isinstance(product, dict) else product
        if product and price.get("id"):
            found.append((product, price["id"]))
    return found


def plans_held(*, user: AbstractBaseUser) -> dict[str, Holding]:
    """The plans ``user`` holds, by product id (two queries; a third only for subscriptions
    the shop has no order for)."""
    if not user.is_authenticated:
        return {}
    held: dict[str, Holding] = {}
    rows = (
        OrderItem.objects.filter(
            order__user=user,
            order__mode=Order.Mode.SUBSCRIPTION,
            order__status__in=HOLDING_STATES,
        )
        .order_by("-order__created_at")
        .values_list(
            "order__public_id",
            "order__status",
            "order__subscription_id",
            "order__subscription__stripe_data__status",
            "price__product_id",
            "price_id",
        )
    )
    for public_id, status, subscription_id, sub_status, product_id, price_id in rows:
        if product_id in held or sub_status in ENDED:
            continue
        if subscription_id is None and status == S.REFUNDED:
            continue  # refunded before any subscription was linked: nothing bills
        settling = status == S.PAYMENT_PROCESSING or sub_status == "incomplete"
        held[product_id] = Holding(product_id, price_id, public_id, settling)
    outside: dict[str, tuple[str, str, str]] = {}
    subscriptions = Subscription.objects.filter(
        customer__subscriber=user, stripe_data__status__in=LIVE
    ).values_list("id", "stripe_data")
    for subscription_id, data in subscriptions:
        for product_id, price_id in _price_products(data or {}):
            if product_id not in held:
                outside.setdefault(product_id, (subscription_id, price_id, data.get("status")))
    if outside:
        orders = dict(
            Order.objects.filter(
                user=user, subscription_id__in=[sub for sub, _, _ in outside.values()]
            ).values_list("subscription_id", "public_id")
        )
        for product_id, (subscription_id, price_id, status) in outside.items():
            held[product_id] = Holding(
                product_id, price_id, orders.get(subscription_id), status == "incomplete"
            )
    return held


def catalog_plans(*, entries: list, user: AbstractBaseUser) -> list[tuple[Any, Holding | None]]:
    """Catalog entries (``orders.selectors.catalog``), each with the plan ``user`` holds of its
    product: None when they hold none, or when the product allows several."""
    held = plans_held(user=user)
    return [
        (entry, None if allows_multiple(entry.product.stripe_data) else held.get(entry.product.id))
        for entry in entries
    ]


def plan_refuse_held(*, user: AbstractBaseUser, price: Price) -> None:
    """Raise ``CheckoutError`` when ``price`` sells a plan ``user`` already holds; its ``order``
    is the one whose page manages the plan (None when it was made outside the shop)."""
    product_id = plan_of(price)
    if product_id is None:
        return
    holding = plans_held(user=user).get(product_id)
    if holding is None:
        return
    order = (
        Order.objects.filter(user=user, public_id=holding.order_public_id).first()
        if holding.order_public_id
        else None
    )
    if holding.settling and order is not None:
        raise CheckoutError(wording.PAYMENT_SETTLING, order=order)
    message = PLAN_HELD.format(plan=price.product.name)
    raise CheckoutError(message + (PLAN_MANAGE if order is not None else ""), order=order)


def plan_orders_open(*, user: AbstractBaseUser, product_id: str) -> list[tuple[Order, str, int]]:
    """The customer's unpaid orders of the plan (not replaced), newest first, with each one's
    price and quantity (one query)."""
    items = (
        OrderItem.objects.filter(
            order__user=user,
            order__status__in=PAYABLE,
            order__replaced_by__isnull=True,
            price__product_id=product_id,
        )
        .select_related("order")
        .order_by("-order__created_at", "-order_id")
    )
    return [(item.order, item.price_id, item.quantity) for item in items]


def user_lock(user: AbstractBaseUser) -> None:
    """Lock the customer's row until the transaction ends: one plan decision at a time."""
    get_user_model()._default_manager.select_for_update().filter(pk=user.pk).exists()


# --- Reconcile: customers holding a plan twice ------------------------------------------------


@dataclass(frozen=True)
class Duplicate:
    """A Stripe customer with several live subscriptions to one plan."""

    customer_id: str
    product_id: str
    product_name: str
    subscriptions: list[tuple[str, str]]  # (id, status), oldest first
    orders: list[str]  # public ids of the orders those subscriptions belong to

    @property
    def detail(self) -> str:
        subs = ", ".join(f"{sub} ({status})" for sub, status in self.subscriptions)
        orders = f"; orders {', '.join(self.orders)}" if self.orders else "; no order"
        return (
            f"{len(self.subscriptions)} live subscriptions to {self.product_name}: {subs}{orders}"
        )


def subscriptions_duplicated(*, since=None) -> list[Duplicate]:
    """Customers with more than one live subscription to a plan, from the mirror.

    One grouped query over the live subscriptions (found through the index on their status,
    ``djstripe_subscription_status``) joined to their items and prices by key: its cost follows
    the live subscriptions, not the orders or customers. Products that allow several are
    dropped after (there are few groups). ``since``: groups with a subscription created since.
    """
    groups = (
        SubscriptionItem.objects.filter(subscription__stripe_data__status__in=LIVE)
        .values("subscription__customer_id", "price__product_id")
        .annotate(n=Count("subscription_id", distinct=True), newest=Max("subscription__created"))
        .filter(n__gt=1)
        .order_by("subscription__customer_id", "price__product_id")
    )
    if since is not None:
        groups = groups.filter(newest__gte=since)
    groups = list(groups)
    if not groups:
        return []
    # The groups' items in one more query, by their customers' and products' keys.
    pairs = {(g["subscription__customer_id"], g["price__product_id"]) for g in groups}
    items = (
        SubscriptionItem.objects.filter(
            subscription__customer_id__in={customer for customer, _ in pairs},
            price__product_id__in={product for _, product in pairs},
            subscription__stripe_data__status__in=LIVE,
        )
        .select_related("price__product", "subscription")
        .order_by("subscription__created", "subscription_id")
    )
    grouped: dict[tuple[str, str], list[SubscriptionItem]] = {}
    for item in items:
        key = (item.subscription.customer_id, item.price.product_id)
        if key in pairs:
            grouped.setdefault(key, []).append(item)
    subscription_ids = [item.subscription_id for found in grouped.values() for item in found]
    order_of = dict(
        Order.objects.filter(subscription_id__in=subscription_ids).values_list(
            "subscription_id", "public_id"
        )
    )
    duplicates = []
    for (customer_id, product_id), found in sorted(grouped.items()):
        product = found[0].price.product
        if allows_multiple(product.stripe_data):
            continue
        subscriptions = list(
            dict.fromkeys(
                (i.subscription_id, i.subscription.stripe_data.get("status")) for i in found
            )
        )
        orders = [order_of[sub] for sub, _ in subscriptions if sub in order_of]
        duplicates.append(Duplicate(customer_id, product_id, product.name, subscriptions, orders))
    return duplicates
