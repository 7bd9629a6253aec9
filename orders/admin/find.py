"""The front page's one search box: any id, email or order number, straight to its page.

A Stripe id the mirror has opens that object's page (a customer's is their whole account),
an event id its event; one order found opens the order; anything else lists the orders the
term finds (``selectors.order_search``, every kind of term through an index).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode

from billing import types
from billing.display import admin_url
from billing.models import InboundEvent
from orders import selectors
from orders.models import Order


def _stripe_object_url(request: HttpRequest, term: str) -> str | None:
    object_type = types.for_id(term)
    if object_type is None:
        return None
    if object_type == "event":
        event = InboundEvent.objects.filter(id=term).values_list("pk", flat=True).first()
        if event is not None and request.user.has_perm("billing.view_inboundevent"):
            return admin_url("billing_inboundevent", event)
        return None
    model = types.model_for(object_type)
    if model is None or not model.objects.filter(id=term).exists():
        return None
    opts = model._meta
    if not request.user.has_perm(f"{opts.app_label}.view_{opts.model_name}"):
        return None
    return admin_url(f"{opts.app_label}_{opts.model_name}", term)


def find_view(request: HttpRequest) -> HttpResponseRedirect:
    term = request.GET.get("q", "").strip()
    if not term:
        return HttpResponseRedirect(reverse("admin:index"))
    if url := _stripe_object_url(request, term):
        return HttpResponseRedirect(url)
    found = selectors.order_search(term=term)
    if found is not None and not found.nothing:
        orders = list(Order.objects.filter(found.query).values_list("public_id", flat=True)[:2])
        if len(orders) == 1:
            return HttpResponseRedirect(admin_url("orders_order", orders[0]))
    changelist = reverse("admin:orders_order_changelist")
    return HttpResponseRedirect(f"{changelist}?{urlencode({'q': term})}")
