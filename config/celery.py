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


def task(name: str):
    """A registered task by its name: how a service publishes the task that runs it without
    importing the tasks module (which imports the services: a cycle). A web process has not
    imported the apps' task modules yet: the first call has Celery import them (its
    autodiscovery, as a worker does at start)."""
    if name not in app.tasks:
        app.loader.import_default_modules()
    return app.tasks[name]


@app.task(name="config.ping")
def ping(value: str = "pong") -> str:
    """A worker's round trip: ``celery -A config call config.ping`` shows a worker consumes
    from the broker (and the tests of this wiring use it)."""
    return value
