"""Bench-only URLs: dj-stripe's ``ProcessWebhookView`` at ``/djstripe/webhook/<uuid>/``."""

from django.urls import include, path

urlpatterns = [
    path("djstripe/", include("djstripe.urls", namespace="djstripe")),
]
