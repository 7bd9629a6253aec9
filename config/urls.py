from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from config.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path(settings.ADMIN_URL, admin.site.urls),
    path("", include("billing.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("orders.urls")),
]

handler403 = "config.errors.permission_denied"
