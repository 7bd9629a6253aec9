import json
import subprocess
import sys

import pytest

from config.celery import ping
from tests.conftest import ROOT, subprocess_env

# Run in a fresh process so the settings are read as a deployment reads them (the test
# session's own fixtures switch eager mode on and off per test).
PROBE = """
import json, django
django.setup()
from config.celery import app
from config.celery import ping
result = ping.apply_async(("hello",)) if app.conf.task_always_eager else None
print(json.dumps({
    "eager": app.conf.task_always_eager,
    "broker": app.conf.broker_url,
    "result": result.get(timeout=1) if result is not None else None,
    "kind": type(result).__name__,
}))
"""


def settings_probe(**env: str) -> dict:
    environment = {k: v for k, v in subprocess_env(**env).items() if not k.startswith("CELERY_")}
    environment.update({k: v for k, v in env.items() if k.startswith("CELERY_")})
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**environment, "DJANGO_DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_without_a_broker_tasks_run_in_process():
    probe = settings_probe()

    assert probe == {"eager": True, "broker": "memory://", "result": "hello", "kind": "EagerResult"}


def test_with_a_broker_tasks_are_not_run_in_process():
    probe = settings_probe(CELERY_BROKER_URL="redis://127.0.0.1:9/0")

    assert probe["eager"] is False
    assert probe["broker"] == "redis://127.0.0.1:9/0"


@pytest.mark.worker
def test_task_runs_through_a_real_worker_process(celery_worker_process):
    result = ping.delay("through-redis")

    assert result.get(timeout=30) == "through-redis"
    # the result came back from another process, not an in-process eager call
    assert not result.app.conf.task_always_eager


PUBLISH_PROBE = """
import json, django
django.setup()
import redis
from config.celery import app
from config.celery import ping
made = []
original = redis.Redis.__init__
def counted(self, *args, **kwargs):
    made.append(1)
    original(self, *args, **kwargs)
ping.apply_async((0,))  # the first message opens the channel
redis.Redis.__init__ = counted
for n in range(1, 21):
    ping.apply_async((n,))
with app.connection_for_write() as connection:
    transport = type(connection.transport).__module__
    redis.Redis.__init__ = original
    client = connection.default_channel.client
    queued = client.llen("celery")
    client.delete("celery")
print(json.dumps({"clients": len(made), "queued": queued, "transport": transport}))
"""


def test_publishing_to_redis_reuses_one_client():
    """kombu's stock Redis transport builds a client per message; config.broker keeps one."""
    redis_db = 12  # none of the suite's brokers (.ci/run uses 15 and 14)
    try:
        done = subprocess.run(
            [sys.executable, "-c", PUBLISH_PROBE],
            cwd=ROOT,
            env={**subprocess_env(CELERY_BROKER_URL=f"redis://127.0.0.1:6379/{redis_db}"),
                 "DJANGO_DEBUG": "true"},
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        if "Connection refused" in exc.stderr:
            pytest.skip("no Redis on 127.0.0.1:6379")
        raise
    probe = json.loads(done.stdout.strip().splitlines()[-1])

    assert probe["transport"] == "config.broker"
    assert probe["queued"] == 21  # every message reached the queue
    assert probe["clients"] == 0  # once the channel is open: not one per message


TASK_BY_NAME_PROBE = """
import json, sys, django
django.setup()
from config import celery
before = "billing.tasks" in sys.modules
task = celery.task("billing.process_event")
print(json.dumps({"imported_before": before, "name": task.name}))
"""


def test_a_web_process_finds_a_task_by_name_before_anything_imported_it():
    """Services publish tasks by name (``config.celery.task``), so that they need not import
    the tasks module that imports them; in a web process nothing has imported it yet."""
    done = subprocess.run(
        [sys.executable, "-c", TASK_BY_NAME_PROBE],
        cwd=ROOT,
        env={**subprocess_env(CELERY_BROKER_URL="redis://127.0.0.1:9/0"), "DJANGO_DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe == {"imported_before": False, "name": "billing.process_event"}
