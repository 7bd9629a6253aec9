"""The Celery app. Eager (in process, on commit) when CELERY_BROKER_URL is unset."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
if not app.conf.broker_url:
    # Eager mode never talks to a broker; an in-memory transport keeps kombu quiet about it.
    app.conf.broker_url = "memory://"
app.autodiscover_tasks()
