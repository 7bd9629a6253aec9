"""Accounts: Django's user admin, searched through indexes, with staff two-factor's reset."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.urls import path
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.admin.base import ConsoleList
from orders import selectors
from orders.login import two_factor_views

admin.site.unregister(get_user_model())
# django-otp's own device admins show an authenticator's secret key and QR code to whoever may
# view devices; nobody needs them. A staff member's two-factor is reset from their account.
for _device_model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_device_model):
        admin.site.unregister(_device_model)


@admin.register(get_user_model())
class AccountAdmin(ConsoleList, UserAdmin):
    """Django's ``UserAdmin`` (the same pages, forms and permissions), with its search made
    exact: ``icontains`` on four columns reads every account of a big shop."""

    search_fields = ("username",)  # the box is shown; ``get_search_results`` does the finding
    search_help_text = "A username, or an email (any case; or its beginning followed by *)."

    def get_search_results(self, request, queryset, search_term):
        found = selectors.accounts_search(term=search_term)
        return (queryset if found is None else queryset.filter(found)), False

    def get_urls(self):
        opts = self.opts
        return [
            path(
                "<path:object_id>/two-factor-reset/",
                self.admin_site.admin_view(two_factor_views.reset),
                name=f"{opts.app_label}_{opts.model_name}_two_factor_reset",
            ),
            *super().get_urls(),
        ]
