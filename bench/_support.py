"""Helpers shared by the benchmarks: ports, child processes, a closed-loop HTTP load generator.

Standard library only, so a bench process needs nothing beyond the project's venv.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class Processes:
    """Child processes, each in its own session with output in a log file; stopped by pid."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str, command: list[str], *, env: dict[str, str], cwd: Path):
        log = self.log_dir / f"{name}.log"
        self.logs[name] = log
        with log.open("ab") as out:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running[name] = proc
        return proc

    def check_alive(self, name: str) -> None:
        proc = self.running[name]
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.logs[name]}")

    def stop(self, name: str, timeout: float = 15.0) -> None:
        """SIGTERM the child's process group (its own session), then SIGKILL if it lingers."""
        proc = self.running.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        # Pool children (gunicorn or celery workers) left behind by a killed parent.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in reversed(list(self.running)):
            self.stop(name)


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


# --- Closed-loop load ----------------------------------------------------------------------

# What a request factory returns: method, path, body, headers.
Request = tuple[str, str, bytes, dict[str, str]]


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    statuses: dict[int | str, int] = field(default_factory=dict)  # non-2xx status or error
    elapsed: float = 0.0  # measured window: first measured start to last measured end
    samples: list[str] = field(default_factory=list)  # a few error bodies

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        return sum(self.statuses.values())

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


def run_load(
    host: str,
    port: int,
    requests: Callable[[], Request] | Iterable[Request],
    *,
    threads: int,
    duration: float | None = None,
    warmup: float = 0.0,
    timeout: float = 60.0,
) -> LoadResult:
    """Send requests from ``threads`` connections, each waiting for its answer (closed loop).

    ``requests`` is either a factory called before each send (run for ``warmup`` + ``duration``
    seconds; only requests started after the warm-up are measured) or a finite iterable
    (sent once each, all measured). Every thread keeps one ``HTTPConnection``; when the server
    closes it after a response (gunicorn's sync workers do), the next request reconnects, and
    the connect is part of that request's latency, as it is for Stripe's deliveries.
    """
    factory = requests if callable(requests) else None
    source: Iterator[Request] | None = None if factory else iter(requests)
    source_lock = threading.Lock()
    result = LoadResult()
    result_lock = threading.Lock()
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + duration if duration is not None else math.inf
    bounds = [math.inf, 0.0]

    def next_request() -> Request | None:
        if factory is not None:
            return factory() if time.perf_counter() < stop_at else None
        with source_lock:
            return next(source, None)

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        latencies: list[float] = []
        statuses: dict[int | str, int] = {}
        samples: list[str] = []
        first, last = math.inf, 0.0
        try:
            while (item := next_request()) is not None:
                method, path, body, headers = item
                t0 = time.perf_counter()
                try:
                    conn.request(method, path, body=body, headers=headers)
                    response = conn.getresponse()
                    payload = response.read()
                    outcome: int | str = response.status
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()  # the next request opens a fresh connection
                    outcome, payload = type(exc).__name__, str(exc).encode()
                t1 = time.perf_counter()
                if t0 < measure_from:
                    continue
                first, last = min(first, t0), max(last, t1)
                if isinstance(outcome, int) and 200 <= outcome < 300:
                    latencies.append(t1 - t0)
                else:
                    statuses[outcome] = statuses.get(outcome, 0) + 1
                    if len(samples) < 3:
                        samples.append(f"{outcome}: {payload[:300]!r}")
        finally:
            conn.close()
            with result_lock:
                result.latencies.extend(latencies)
                for key, count in statuses.items():
                    result.statuses[key] = result.statuses.get(key, 0) + count
                result.samples.extend(samples[: max(0, 5 - len(result.samples))])
                bounds[0], bounds[1] = min(bounds[0], first), max(bounds[1], last)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    result.elapsed = max(0.0, bounds[1] - bounds[0]) if bounds[1] else 0.0
    return result


def counter() -> Callable[[], int]:
    """A thread-safe sequence 1, 2, 3 ... (itertools.count's next is atomic under the GIL)."""
    sequence = itertools.count(1)
    return lambda: next(sequence)


def django_in_process(*, stripe_url: str, db_path: str, **env: str) -> None:
    """Django in this process on a fresh SQLite file, migrated, pointed at fakestripe; tasks
    run in process. ``env`` adds or overrides settings variables."""
    os.environ.update(
        {
            "DJANGO_DEBUG": "true",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"sqlite:///{db_path}",
            "STRIPE_API_BASE": stripe_url,
            "STRIPE_SECRET_KEY": "sk_test_bench0000000000000000000000",
            "CELERY_BROKER_URL": "",
            "DJANGO_LOG_LEVEL": "ERROR",
            "STRIPE_LOG_LEVEL": "ERROR",
            **env,
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def bench_main(make_bench: Callable[[Path], Any], *, prefix: str, keep_logs: bool) -> int:
    """Run a bench's ``run()`` then ``cleanup()`` whatever happens (SIGTERM unwinds like
    Ctrl-C); its log directory is dropped after a success unless kept. ``make_bench`` gets
    the log directory; the bench raises an exception with a ``message``-worthy str to fail."""
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    log_dir = Path(tempfile.mkdtemp(prefix=prefix))
    bench = make_bench(log_dir)
    ok = False
    try:
        bench.run()
        ok = True
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    except Exception as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
    finally:
        bench.cleanup()
        if ok and not keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            logs = sorted(str(p) for p in log_dir.glob("*"))
            print(f"logs in {log_dir}: {', '.join(logs)}", file=sys.stderr)
    return 0 if ok else 1
