from django.urls import path

from billing.webhooks import views
from billing.webhooks.endpoints import WEBHOOK_PATH

app_name = "billing"

urlpatterns = [
    path(f"{WEBHOOK_PATH.lstrip('/')}<uuid:endpoint_uuid>/", views.webhook, name="webhook"),
]
