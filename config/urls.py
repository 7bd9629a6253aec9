from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from billing.admin.versions import api_versions_view
from config.health import healthz
from config.throttle import throttled
from orders.forms import LoginForm


class StaticRedirect(RedirectView):
    """A redirect to a static file, resolved per request (the manifest exists only after
    collectstatic, not when URLs are imported)."""

    permanent = True
    path = ""

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static(self.path)


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Rate-limited in front of the admin's own login view (same URL, same form).
    path(f"{settings.ADMIN_URL}login/", throttled("login")(admin.site.login)),
    path(
        f"{settings.ADMIN_URL}billing/api-versions/",
        api_versions_view,
        name="billing_api_versions",
    ),
    # Browsers ask for /favicon.ico when a page (a PDF, a JSON answer) names no icon.
    path("favicon.ico", StaticRedirect.as_view(path="shop/favicon.svg")),
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
