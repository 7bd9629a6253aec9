"""Error pages. A refusal inside the admin keeps the admin's look and says what to do."""

from django.conf import settings
from django.contrib import admin
from django.template.response import TemplateResponse
from django.views import defaults


def permission_denied(request, exception=None):
    if request.path.startswith(f"/{settings.ADMIN_URL}") and request.user.is_authenticated:
        response = TemplateResponse(
            request,
            "admin/403.html",
            {**admin.site.each_context(request), "title": "Not allowed"},
            status=403,
        )
        return response.render()
    return defaults.permission_denied(request, exception)
