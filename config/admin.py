"""The admin site: Django's default site (``admin.site``), with the index ordered for support.

``ShopAdminConfig`` replaces ``django.contrib.admin`` in INSTALLED_APPS and makes this class the
default site, so ``admin.site`` stays the one every app registers into.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpResponseRedirect
from django.urls import reverse

# The index in the order support works: the order first, then the Stripe objects behind it,
# then the webhook pipeline. A model not listed joins its app's section (each section once),
# or, for an app with none, follows grouped by app as Django does.
SECTIONS: list[tuple[str, str, list[str]]] = [
    (
        "Orders",
        "orders",
        ["orders.order", "orders.orderpayment", "orders.orderrefund", "orders.orderdispute"],
    ),
    (
        "Customers and payments",
        "djstripe",
        [
            "djstripe.customer",
            "djstripe.session",
            "djstripe.paymentintent",
            "djstripe.charge",
            "djstripe.refund",
            "djstripe.dispute",
            "djstripe.subscription",
            "djstripe.invoice",
            "djstripe.product",
            "djstripe.price",
        ],
    ),
    (
        "Webhooks and events",
        "billing",
        [
            "billing.inboundevent",
            "billing.webhookdelivery",
            "billing.webhookrejectcount",
            "billing.webhookrejectsample",
            "djstripe.webhookendpoint",
            "billing.eventdestination",
            "billing.objectsync",
            "billing.auditentry",
            "billing.resyncjob",
            "billing.reconcilereport",
        ],
    ),
]


def section_of(opts) -> tuple[str, str]:
    """The index section a model is listed under, as (name, its app label): breadcrumbs name
    the section the index shows it in. A model in no section is under its app's name."""
    for name, main_app, labels in SECTIONS:
        if opts.label_lower in labels:
            return name, main_app
    for name, main_app, _ in SECTIONS:
        if main_app == opts.app_label:
            return name, main_app
    return str(opts.app_config.verbose_name), opts.app_label


class ShopAdminSite(admin.AdminSite):
    site_header = "Shop support console"
    site_title = "Shop support"
    index_title = "Support console"
    # The console's lists are wide (ids, amounts, links); at 1280 px the sidebar hid columns.
    # The index and the breadcrumbs lead everywhere it did.
    enable_nav_sidebar = False

    def has_permission(self, request):
        """Active staff, and with ``STAFF_TWO_FACTOR`` on, a session verified by a second factor
        (``orders.login.two_factor``)."""
        if not super().has_permission(request):
            return False
        if not settings.STAFF_TWO_FACTOR:
            return True
        from orders.login import two_factor  # its models load after the admin's site

        return two_factor.verified(request)

    def login(self, request, extra_context=None):
        """A staff member who has given the password but not yet a code goes to the code page,
        whether they just gave it or an admin page sent them here."""
        from orders.login import two_factor

        if not two_factor.pending(request):
            response = super().login(request, extra_context)
            if not two_factor.pending(request):
                return response
        target = request.POST.get("next") or request.GET.get("next") or reverse("admin:index")
        return HttpResponseRedirect(f"{reverse('two_factor_verify')}?{urlencode({'next': target})}")

    def index(self, request, extra_context=None):
        """The front page: work to do, webhook health and one search box above the lists."""
        from billing.admin import front  # the admin modules load after the site

        return super().index(request, {**front.front_context(request), **(extra_context or {})})

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        if app_label is not None:
            return app_list
        models = {
            model["model"]._meta.label_lower: (app, model)
            for app in app_list
            for model in app["models"]
        }
        sections = []
        for name, main_app, labels in SECTIONS:
            entries = [models.pop(label) for label in labels if label in models]
            if not entries:
                continue
            home = next((app for app, _ in entries if app["app_label"] == main_app), entries[0][0])
            sections.append(
                {
                    **home,
                    "name": name,
                    "app_label": main_app,
                    "models": [model for _, model in entries],
                }
            )
        by_app = {section["app_label"]: section for section in sections}
        rest: dict[str, dict] = {}
        for app, model in models.values():
            if app["app_label"] in by_app:
                by_app[app["app_label"]]["models"].append(model)
            else:
                rest.setdefault(app["app_label"], {**app, "models": []})["models"].append(model)
        return sections + list(rest.values())


class ShopAdminConfig(AdminConfig):
    default_site = "config.admin.ShopAdminSite"
