import pytest

from billing.tasks import echo


def test_task_runs_eagerly_without_a_broker():
    result = echo.delay("hello")

    assert result.get(timeout=1) == "hello"


@pytest.mark.worker
def test_task_runs_through_a_real_worker_process(celery_worker_process):
    result = echo.delay("through-redis")

    assert result.get(timeout=30) == "through-redis"
    # the result came back from another process, not an in-process eager call
    assert not result.app.conf.task_always_eager
