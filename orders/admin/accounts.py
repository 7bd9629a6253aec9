"""Accounts: Django's user admin, searched through indexes."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from billing.admin.base import ConsoleList
from orders import selectors

admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class AccountAdmin(ConsoleList, UserAdmin):
    """Django's ``UserAdmin`` (the same pages, forms and permissions), with its search made
    exact: ``icontains`` on four columns reads every account of a big shop."""

    search_fields = ("username",)  # the box is shown; ``get_search_results`` does the finding
    search_help_text = "A username, or an email (any case; or its beginning followed by *)."

    def get_search_results(self, request, queryset, search_term):
        found = selectors.accounts_search(term=search_term)
        return (queryset if found is None else queryset.filter(found)), False
