from django.urls import path

from billing import webhooks

app_name = "billing"

urlpatterns = [
    path("stripe/webhook/<uuid:endpoint_uuid>/", webhooks.webhook, name="webhook"),
]
