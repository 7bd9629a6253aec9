"""Every admin page a superuser can open: index, the API versions page, and each registered
model's changelist, add page (when adding is allowed) and change pages."""

from __future__ import annotations

from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse


def ours(model_admin) -> bool:
    """dj-stripe's own model admins are replaced by the support console (issue 8): they render
    the API key in full and link to URLs this project does not mount. Once the console's are
    registered instead, this is true of every model admin and every page is visited."""
    return not type(model_admin).__module__.startswith("djstripe.")


def admin_urls(user, *, objects: int = 1) -> list[str]:
    """The pages, with the change page of up to ``objects`` objects of each model."""
    request = RequestFactory().get("/")
    request.user = user
    urls = [reverse("admin:index"), reverse("billing_api_versions")]
    for model, model_admin in admin.site._registry.items():
        if not ours(model_admin):
            continue
        info = (model._meta.app_label, model._meta.model_name)
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        for obj in model_admin.get_queryset(request)[:objects]:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
        if model_admin.has_add_permission(request):
            urls.append(reverse("admin:{}_{}_add".format(*info)))
    return urls
