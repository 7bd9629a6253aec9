from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from billing.admin_versions import api_versions_view
from config.health import healthz
from config.throttle import throttled
from orders.forms import LoginForm

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Rate-limited in front of the admin's own login view (same URL, same form).
    path(f"{settings.ADMIN_URL}login/", throttled("login")(admin.site.login)),
    path(
        f"{settings.ADMIN_URL}billing/api-versions/",
        api_versions_view,
        name="billing_api_versions",
    ),
    path(settings.ADMIN_URL, admin.site.urls),
    path("", include("billing.urls")),
    path(
        "accounts/login/",
        throttled("login")(auth_views.LoginView.as_view(authentication_form=LoginForm)),
        name="login",
    ),
    path(
        "accounts/password_reset/",
        throttled("password_reset")(auth_views.PasswordResetView.as_view()),
        name="password_reset",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("orders.urls")),
]

handler403 = "config.errors.permission_denied"
