"""The Celery app. Eager (in process, on commit) when CELERY_BROKER_URL is unset."""

import os

from celery import Celery, platforms, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
if not app.conf.broker_url:
    # Eager mode never talks to a broker; an in-memory transport keeps kombu quiet about it.
    app.conf.broker_url = "memory://"
app.autodiscover_tasks()


# The pid of this worker's main process, for its embedded beat (``celery worker --beat``).
_worker_pid: int | None = None


@signals.worker_init.connect
def _worker_pid_note(**kwargs) -> None:
    global _worker_pid
    _worker_pid = os.getpid()


@signals.beat_embedded_init.connect
def _beat_dies_with_its_worker(**kwargs) -> None:
    """The beat a worker runs (``--beat``) is a child process. Celery has the kernel kill the
    worker's pool processes when the worker dies (``PR_SET_PDEATHSIG``), not its beat: a worker
    killed with ``kill -9`` (or by the OOM killer) left its beat running on its own, for good,
    with the old code and schedule, and the worker started again ran a second one on the same
    schedule file (a shelve, which two writers corrupt). So the beat asks for the same signal:
    it dies with its worker, and the worker started again runs the one beat, resuming the
    schedule from its file. Linux only; elsewhere nothing changes."""
    platforms.set_pdeathsig("SIGKILL")
    if _worker_pid is not None and os.getppid() != _worker_pid:
        raise SystemExit("the worker died while its beat was starting")


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
