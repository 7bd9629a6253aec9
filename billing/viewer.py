"""Links only to pages their reader may open: a link answering 403 is a dead end.

``viewer_middleware`` remembers who a page is drawn for (admin columns and fields get no
request); ``page_url`` and ``page_link`` draw a link only when that person may open it.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from django.utils.html import format_html

from billing.display import admin_url

# The signed-in person a page is drawn for, set per request by ``viewer_middleware``: admin
# columns and fields get no request, and a link to a page answering 403 is a dead end.
_viewer: ContextVar[Any] = ContextVar("console_viewer", default=None)


def viewer_middleware(get_response):
    def middleware(request):
        token = _viewer.set(getattr(request, "user", None))
        try:
            return get_response(request)
        finally:
            _viewer.reset(token)

    return middleware


def may_open(model: str) -> bool:
    """Whether the page's reader may open ``model``'s pages (``"auth_user"``); outside a
    request (a command, a task) there is no reader to hide anything from."""
    user = _viewer.get()
    if user is None:
        return True
    app_label, model_name = model.split("_", 1)
    return user.has_perm(f"{app_label}.view_{model_name}") or user.has_perm(
        f"{app_label}.change_{model_name}"
    )


def page_url(model: str, key: Any) -> str:
    """``admin_url`` for a link on a page: empty when its reader may not open it."""
    return admin_url(model, key) if may_open(model) else ""


def page_link(model: str, key: Any, text: str) -> str:
    """A link to an admin page, or the text alone for a reader who may not open it."""
    url = page_url(model, key)
    return format_html('<a href="{}">{}</a>', url, text) if url else format_html("{}", text)
