from django.conf import settings
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from config.health import healthz


class StaticRedirect(RedirectView):
    """A redirect to a static file, resolved per request (the manifest exists only after
    collectstatic, not when URLs are imported)."""

    permanent = True
    path = ""

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static(self.path)


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico when a page (a PDF, a JSON answer) names no icon.
    path("favicon.ico", StaticRedirect.as_view(path="shop/favicon.svg")),
    path(settings.ADMIN_URL, admin.site.urls),
    path("", include("billing.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("orders.urls")),
]
