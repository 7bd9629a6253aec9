"""Customers, products, prices, webhook endpoints, events and the account."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from . import DEFAULT_API_VERSION, objects
from .api import (
    REGISTRY,
    Resource,
    boolean,
    check_params,
    fetch_live,
    merge_metadata,
    register,
    require,
    route,
    string_list,
    text,
)
from .errors import invalid
from .events import public
from .objects import ZERO_DECIMAL
from .params import as_bool, as_int, as_list


def field_is(name: str):
    """A list filter comparing a top-level field with the parameter as given."""

    def test(obj: dict[str, Any], value: Any) -> bool:
        actual = obj.get(name)
        if isinstance(actual, bool):
            return actual == boolean(value)
        return actual == value

    return test


def getter(path: str):
    def get(obj: dict[str, Any]) -> Any:
        for part in path.split("."):
            obj = obj.get(part) if isinstance(obj, dict) else None
        return obj

    return get


# -- customers --------------------------------------------------------------------------


def customer_create(emu, call, params: dict[str, Any]) -> dict[str, Any]:
    cus = objects.customer(
        emu.new_id("cus"),
        emu.now(),
        email=text(params.get("email")),
        name=text(params.get("name")),
        description=text(params.get("description")),
        phone=text(params.get("phone")),
        metadata=merge_metadata({}, params.get("metadata", {})),
    )
    if params.get("address"):
        cus["address"] = {**objects.address(), **params["address"]}
    default_pm = (params.get("invoice_settings") or {}).get("default_payment_method")
    if default_pm:
        from .payments import resolve_payment_method

        cus["invoice_settings"]["default_payment_method"] = resolve_payment_method(
            emu, default_pm, customer_id=cus["id"], param="invoice_settings[default_payment_method]"
        )["id"]
    emu.store.put(cus)
    emu.events.emit("customer.created", cus, call=call)
    return cus


def customer_update(emu, call, cus: dict[str, Any], params: dict[str, Any]) -> None:
    settings = params.get("invoice_settings")
    if isinstance(settings, dict) and "default_payment_method" in settings:
        from .payments import resolve_payment_method

        pm_id = settings["default_payment_method"]
        cus["invoice_settings"]["default_payment_method"] = (
            resolve_payment_method(
                emu, pm_id, customer_id=cus["id"], param="invoice_settings[default_payment_method]"
            )["id"]
            if pm_id
            else None
        )
    if "address" in params:
        cus["address"] = {**objects.address(), **params["address"]} if params["address"] else None


def _customer_subscriptions(emu, cus: dict[str, Any]) -> dict[str, Any]:
    data = [
        emu.store.objects[oid]
        for oid in emu.store.index("subscription").newest_first()
        if emu.store.objects[oid]["customer"] == cus["id"]
        and emu.store.objects[oid]["status"] != "canceled"
    ]
    return objects.list_object(
        public(data[:10]), f"/v1/customers/{cus['id']}/subscriptions", len(data) > 10
    )


def _empty_list(suffix: str):
    """An includable list the emulator has nothing for (sources, tax ids)."""
    return lambda emu, cus: objects.list_object([], f"/v1/customers/{cus['id']}/{suffix}")


CUSTOMER = register(
    Resource(
        object="customer",
        path="customers",
        prefix="cus",
        noun="customer",
        indexed=("email",),
        event="customer",
        create=customer_create,
        create_params=frozenset(
            {"email", "name", "description", "phone", "metadata", "address", "invoice_settings"}
        ),
        update_params={"email": text, "name": text, "description": text, "phone": text},
        update_hook=customer_update,
        hook_params=frozenset({"invoice_settings", "address"}),
        deletable="stub",
        filters={"email": field_is("email"), "test_clock": field_is("test_clock")},
        expandable=frozenset(
            {"default_source", "invoice_settings.default_payment_method", "test_clock"}
        ),
        includable={
            "subscriptions": _customer_subscriptions,
            "sources": _empty_list("sources"),
            "tax_ids": _empty_list("tax_ids"),
        },
        search_fields={
            "email": getter("email"),
            "name": getter("name"),
            "phone": getter("phone"),
            "created": getter("created"),
        },
    )
)


@route("GET", "/v1/customers/{cus_id}/sources")
def customer_sources(emu, call, cus_id: str) -> dict[str, Any]:
    """A customer's legacy sources (cards, bank accounts): the emulator has none.

    dj-stripe's djstripe_sync_models asks for them twice per customer (object=card, then
    bank_account), so the baseline it is measured against needs the route.
    """
    check_params(call.params, {"object", "limit", "starting_after", "ending_before"})
    fetch_live(emu, CUSTOMER, cus_id)
    return objects.list_object([], f"/v1/customers/{cus_id}/sources")


# -- products and prices ------------------------------------------------------------------


def product_create(emu, call, params: dict[str, Any]) -> dict[str, Any]:
    now = emu.now()
    prod = objects.product(
        text(params.get("id")) or emu.new_id("prod"),
        now,
        name=str(require(params, "name")),
        description=text(params.get("description")),
        active=as_bool(params, "active", True),
        metadata=merge_metadata({}, params.get("metadata", {})),
        images=as_list(params, "images"),
        url=text(params.get("url")),
        unit_label=text(params.get("unit_label")),
        statement_descriptor=text(params.get("statement_descriptor")),
    )
    if emu.store.get(prod["id"]):
        raise invalid(
            f"Product already exists: {prod['id']}", param="id", code="resource_already_exists"
        )
    emu.store.put(prod)
    emu.events.emit("product.created", prod, call=call)
    default = params.get("default_price_data")
    if isinstance(default, dict):
        p = build_price(emu, {**default, "product": prod["id"]}, param="default_price_data")
        emu.store.put(p)
        emu.events.emit("price.created", p, call=call)
        prod["default_price"] = p["id"]
        emu.store.save(prod)
    return prod


def product_update(emu, call, prod: dict[str, Any], params: dict[str, Any]) -> None:
    if "default_price" in params:
        price_id = params["default_price"] or None
        if price_id:
            fetch_live(emu, PRICE, price_id, param="default_price")
        prod["default_price"] = price_id
    if "images" in params:
        prod["images"] = string_list(params["images"])


def product_delete_check(emu, prod: dict[str, Any]) -> None:
    for price_id in emu.store.index("price").newest_first():
        if emu.store.objects[price_id]["product"] == prod["id"]:
            raise invalid(
                "This product cannot be deleted because it has one or more user-created prices."
            )


PRODUCT = register(
    Resource(
        object="product",
        path="products",
        prefix="prod",
        noun="product",
        event="product",
        create=product_create,
        create_params=frozenset(
            {
                "id",
                "name",
                "description",
                "active",
                "metadata",
                "images",
                "url",
                "unit_label",
                "statement_descriptor",
                "default_price_data",
                "tax_code",
                "shippable",
            }
        ),
        update_params={
            "name": str,
            "description": text,
            "active": boolean,
            "url": text,
            "unit_label": text,
            "statement_descriptor": text,
        },
        update_hook=product_update,
        hook_params=frozenset({"default_price", "images"}),
        deletable="remove",
        delete_check=product_delete_check,
        filters={
            "active": field_is("active"),
            "shippable": field_is("shippable"),
            "url": field_is("url"),
            "ids": lambda o, v: o["id"] in as_list({"v": v}, "v"),
        },
        expandable=frozenset({"default_price"}),
        search_fields={
            "active": getter("active"),
            "name": getter("name"),
            "description": getter("description"),
            "url": getter("url"),
            "shippable": getter("shippable"),
            "created": getter("created"),
        },
    )
)


@route("GET", "/v1/products/{prod_id}/features")
def product_features(emu, call, prod_id: str) -> dict[str, Any]:
    """Product features (entitlements) are not modelled: always an empty list."""
    fetch_live(emu, PRODUCT, prod_id)
    return objects.list_object([], f"/v1/products/{prod_id}/features")


def build_price(emu, params: dict[str, Any], *, param: str = "", active=True) -> dict[str, Any]:
    """A price from `prices.create` params or inline `price_data` (with `product_data`)."""

    def name(field: str) -> str:
        return f"{param}[{field}]" if param else field

    currency = str(params.get("currency") or "").lower()
    if not currency:
        raise invalid(
            f"Missing required param: {name('currency')}.",
            param=name("currency"),
            code="parameter_missing",
        )
    if len(currency) != 3:
        raise invalid(f"Invalid currency: {currency}", param=name("currency"))
    amount = as_int(params, "unit_amount")
    if amount is None and params.get("unit_amount_decimal") not in (None, ""):
        amount = int(float(params["unit_amount_decimal"]))
    if amount is None:
        raise invalid(
            f"Missing required param: {name('unit_amount')}.",
            param=name("unit_amount"),
            code="parameter_missing",
        )
    if amount < 0:
        raise invalid("This value must be greater than or equal to 0.", param=name("unit_amount"))
    product_id = params.get("product")
    if isinstance(params.get("product_data"), dict):
        data = params["product_data"]
        prod = objects.product(
            emu.new_id("prod"),
            emu.now(),
            name=str(require(data, "name")),
            metadata=merge_metadata({}, data.get("metadata", {})),
            description=text(data.get("description")),
        )
        emu.store.put(prod)
        product_id = prod["id"]
    elif product_id:
        fetch_live(emu, PRODUCT, product_id, param=name("product"))
    else:
        raise invalid(
            f"Missing required param: {name('product')}.",
            param=name("product"),
            code="parameter_missing",
        )
    recurring = params.get("recurring")
    if isinstance(recurring, dict) and recurring:
        interval = recurring.get("interval")
        if interval not in ("day", "week", "month", "year"):
            raise invalid(
                "Invalid recurring[interval]: must be one of day, week, month, or year",
                param=name("recurring[interval]"),
            )
        recurring = {
            "interval": interval,
            "interval_count": as_int(recurring, "interval_count", default=1),
            "meter": None,
            "trial_period_days": as_int(recurring, "trial_period_days"),
            "usage_type": recurring.get("usage_type", "licensed"),
        }
    else:
        recurring = None
    return objects.price(
        emu.new_id("price"),
        emu.now(),
        product_id=product_id,
        currency=currency,
        unit_amount=amount,
        recurring=recurring,
        active=as_bool(params, "active", active),
        metadata=merge_metadata({}, params.get("metadata", {})),
        nickname=text(params.get("nickname")),
        lookup_key=text(params.get("lookup_key")),
    )


def price_create(emu, call, params: dict[str, Any]) -> dict[str, Any]:
    created_product = isinstance(params.get("product_data"), dict)
    p = build_price(emu, params)
    if created_product:
        emu.events.emit("product.created", emu.store.get(p["product"]), call=call)
    emu.store.put(p)
    emu.events.emit("price.created", p, call=call)
    return p


def _currency_options(emu, price: dict[str, Any]) -> dict[str, Any]:
    """Prices in other currencies: the emulator has only the price's own currency."""
    return {
        price["currency"]: {
            "custom_unit_amount": price["custom_unit_amount"],
            "tax_behavior": price["tax_behavior"],
            "unit_amount": price["unit_amount"],
            "unit_amount_decimal": price["unit_amount_decimal"],
        }
    }


PRICE = register(
    Resource(
        object="price",
        path="prices",
        prefix="price",
        noun="price",
        indexed=("product",),
        event="price",
        create=price_create,
        create_params=frozenset(
            {
                "currency",
                "unit_amount",
                "unit_amount_decimal",
                "product",
                "product_data",
                "recurring",
                "active",
                "metadata",
                "nickname",
                "lookup_key",
                "tax_behavior",
                "billing_scheme",
            }
        ),
        update_params={"active": boolean, "nickname": text, "lookup_key": text},
        filters={
            "product": field_is("product"),
            "active": field_is("active"),
            "type": field_is("type"),
            "currency": field_is("currency"),
            "lookup_keys": lambda o, v: o["lookup_key"] in as_list({"v": v}, "v"),
            "recurring": lambda o, v: (
                bool(o["recurring"])
                and all(o["recurring"].get(k) == x for k, x in v.items() if k == "interval")
            ),
        },
        expandable=frozenset({"product"}),
        # Absent unless expanded, as in Stripe; `tiers` only exist for tiered prices.
        includable={"currency_options": _currency_options, "tiers": lambda emu, price: None},
        search_fields={
            "active": getter("active"),
            "currency": getter("currency"),
            "lookup_key": getter("lookup_key"),
            "product": getter("product"),
            "type": getter("type"),
            "created": getter("created"),
        },
    )
)


def format_amount(amount: int, currency: str) -> str:
    """Currency-aware display of a minor-unit amount (jpy has no decimals)."""
    code = currency.upper()
    if currency.lower() in ZERO_DECIMAL:
        return f"{amount:,} {code}"
    return f"{amount / 100:,.2f} {code}"


# -- webhook endpoints, events, account ---------------------------------------------------

WEBHOOK_EVENTS_PARAM = "enabled_events"


EVENT_TYPE = re.compile(r"^(\*|[a-z_]+(\.[a-z_]+)+)$")


def _enabled_events(value: Any) -> list[str]:
    events = [str(e) for e in as_list({"v": value}, "v")]
    for i, name in enumerate(events):
        if not EVENT_TYPE.match(name):
            raise invalid(
                f"Invalid enabled_events[{i}]: {name} is not an event type.",
                param=f"enabled_events[{i}]",
            )
    if not events:
        raise invalid(
            "Missing required param: enabled_events.",
            param=WEBHOOK_EVENTS_PARAM,
            code="parameter_missing",
        )
    return events


def webhook_create(emu, call, params: dict[str, Any]) -> dict[str, Any]:
    url = str(require(params, "url"))
    if not url.startswith(("http://", "https://")):
        raise invalid(
            "Invalid URL: URL must be publicly accessible.", param="url", code="url_invalid"
        )
    endpoint = objects.webhook_endpoint(
        emu.new_id("we"),
        emu.now(),
        url=url,
        enabled_events=_enabled_events(require(params, "enabled_events")),
        api_version=text(params.get("api_version")) or DEFAULT_API_VERSION,
        description=text(params.get("description")),
        metadata=merge_metadata({}, params.get("metadata", {})),
        secret="whsec_" + secrets.token_urlsafe(24),
    )
    emu.store.put(endpoint)
    return endpoint


def webhook_update(emu, call, endpoint: dict[str, Any], params: dict[str, Any]) -> None:
    if "enabled_events" in params:
        endpoint["enabled_events"] = _enabled_events(params["enabled_events"])
    if "disabled" in params:
        endpoint["status"] = "disabled" if boolean(params["disabled"]) else "enabled"


def webhook_render_secret(emu, call, resource: Resource) -> dict[str, Any]:
    """Create, answering with the signing secret: Stripe shows it on creation only."""
    from .api import check_params, render

    check_params(call.params, resource.create_params)
    endpoint = webhook_create(emu, call, call.params)
    return {**render(emu, call, endpoint), "secret": endpoint["_secret"]}


WEBHOOK_ENDPOINT = register(
    Resource(
        object="webhook_endpoint",
        path="webhook_endpoints",
        prefix="we",
        noun="webhook endpoint",
        create=None,
        create_params=frozenset(
            {"url", "enabled_events", "api_version", "description", "metadata", "connect"}
        ),
        update_params={"url": str, "description": text},
        update_hook=webhook_update,
        hook_params=frozenset({"enabled_events", "disabled"}),
        deletable="remove",
        has_created_filter=False,
    )
)
route("POST", "/v1/webhook_endpoints")(
    lambda emu, call: webhook_render_secret(emu, call, WEBHOOK_ENDPOINT)
)


def _event_type(obj: dict[str, Any], value: Any) -> bool:
    pattern = str(value)
    if pattern.endswith("*"):
        return obj["type"].startswith(pattern[:-1])
    return obj["type"] == pattern


# Stripe lists events of the last 30 days only ("List events, going back up to 30 days"),
# whatever the `created` filter asks for.
EVENT_LIST_WINDOW = 30 * 86400


def _event_in_window(obj: dict[str, Any], params: dict[str, Any]) -> bool:
    return obj["created"] >= time.time() - EVENT_LIST_WINDOW


EVENT = register(
    Resource(
        object="event",
        path="events",
        prefix="evt",
        noun="event",
        indexed=("type",),
        updatable=False,
        default_filter=_event_in_window,
        filters={
            "type": _event_type,
            "types": lambda o, v: any(_event_type(o, t) for t in as_list({"v": v}, "v")),
            "delivery_success": lambda o, v: (o["pending_webhooks"] == 0) == boolean(v),
        },
    )
)


@route("GET", "/v1/account")
def account_retrieve(emu, call) -> dict[str, Any]:
    from .api import render

    return render(emu, call, objects.account())


@route("GET", "/v1/accounts")
def accounts_list(emu, call) -> dict[str, Any]:
    """Connected accounts (Connect): none. The platform's own account is not listed, as in
    Stripe; dj-stripe's djstripe_sync_models lists them before every model it syncs."""
    check_params(call.params, {"limit", "starting_after", "ending_before", "created"})
    return objects.list_object([], "/v1/accounts")


@route("GET", "/v1/accounts/{acct_id}")
def account_retrieve_by_id(emu, call, acct_id: str) -> dict[str, Any]:
    from .api import expand_paths, render
    from .errors import no_such

    if acct_id != objects.ACCOUNT_ID:
        raise no_such("account", acct_id)
    return render(emu, call, objects.account(), expand_paths(call.params))


def resource_for_path(path: str) -> Resource | None:
    return next((r for r in REGISTRY.values() if r.path == path), None)
