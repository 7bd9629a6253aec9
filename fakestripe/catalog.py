"""Products and prices."""

from __future__ import annotations

from typing import Any

from . import objects
from .api import (
    Resource,
    boolean,
    fetch_live,
    merge_metadata,
    register,
    require,
    route,
    string_list,
    text,
)
from .errors import invalid
from .objects import ZERO_DECIMAL
from .params import as_bool, as_int, as_list, field_is, getter


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
