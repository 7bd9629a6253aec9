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
from orders.login import two_factor_views
from orders.login.views import login_guarded, login_link


class StaticRedirect(RedirectView):
    """A redirect to a static file, resolved per request (the manifest exists only after
    collectstatic, not when URLs are imported)."""

    permanent = True
    path = ""

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static(self.path)


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Limited in front of the admin's own login view (same URL, same form, same counters).
    path(
        f"{settings.ADMIN_URL}login/",
        login_guarded(admin.site.login, home=f"/{settings.ADMIN_URL}"),
    ),
    # Staff two-factor: before the admin's own URLs, which need a verified session.
    path(
        f"{settings.ADMIN_URL}two-factor/",
        two_factor_views.verify,
        name="two_factor_verify",
    ),
    path(
        f"{settings.ADMIN_URL}two-factor/setup/",
        two_factor_views.setup,
        name="two_factor_setup",
    ),
    path(
        f"{settings.ADMIN_URL}two-factor/backup-codes/",
        two_factor_views.backup_codes,
        name="two_factor_backup_codes",
    ),
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
        login_guarded(
            auth_views.LoginView.as_view(authentication_form=LoginForm),
            home=settings.LOGIN_REDIRECT_URL,
        ),
        name="login",
    ),
    path("accounts/login/link/<str:token>/", login_link, name="login_link"),
    path(
        "accounts/password_reset/",
        throttled("password_reset")(auth_views.PasswordResetView.as_view()),
        name="password_reset",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("orders.urls")),
]

handler403 = "config.errors.permission_denied"
