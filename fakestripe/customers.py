"""Customers, and attaching payment methods to them."""

from __future__ import annotations

from typing import Any

from . import objects
from .api import (
    Resource,
    check_params,
    expand_paths,
    fetch_live,
    merge_metadata,
    register,
    render,
    require,
    route,
    text,
)
from .events import public
from .params import field_is, getter
from .payment_methods import resolve_payment_method


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
        cus["invoice_settings"]["default_payment_method"] = resolve_payment_method(
            emu, default_pm, customer_id=cus["id"], param="invoice_settings[default_payment_method]"
        )["id"]
    emu.store.put(cus)
    emu.events.emit("customer.created", cus, call=call)
    return cus


def customer_update(emu, call, cus: dict[str, Any], params: dict[str, Any]) -> None:
    settings = params.get("invoice_settings")
    if isinstance(settings, dict) and "default_payment_method" in settings:
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


# Attaching lives with customers: it needs the customer resource, which itself resolves
# payment methods, so payment_methods.py cannot import it without a cycle.
@route("POST", "/v1/payment_methods/{pm_id}/attach")
def payment_method_attach(emu, call, pm_id: str) -> dict[str, Any]:
    check_params(call.params, {"customer"})
    cus = fetch_live(emu, CUSTOMER, require(call.params, "customer"), param="customer")
    pm = resolve_payment_method(emu, pm_id, customer_id=cus["id"], param="id", call=call)
    return render(emu, call, pm, expand_paths(call.params))
