"""Backfilling the mirror: ``stripe_backfill`` beside dj-stripe's ``djstripe_sync_models``.

fakestripe (its own process) is seeded with a business's history (``/_fake/bulk/seed``:
N customers who paid by card, every third subscribed, most renewed once). For each size, on
fresh PostgreSQL databases (schema straight from the models, as bench/webhooks.py does), both
commands mirror the same five types (customer, subscription, invoice, payment intent,
charge), each in a child process:

- unlimited: API calls (fakestripe's own count), calls per 1,000 objects, wall time, peak
  memory (the child's largest process, ru_maxrss; and the child with its writer processes
  together, their proportional set sizes sampled every 0.1 s), rows mirrored against the
  objects fakestripe holds;
- at test mode's limit (fakestripe answering 429 past 25 requests/s): wall time against the
  floor, calls / 25 s. ``stripe_backfill`` runs with ``--max-rps 25``.

Both run inside this project, so dj-stripe's own requests go through the HTTP client
``billing.stripe_api.configure_module`` installs (counted, and retried by the project's policy,
429s included); with stock stripe-python, which does not retry a 429 without
``Stripe-Should-Retry``, ``djstripe_sync_models`` gives up at the limit within seconds.

    .venv/bin/python bench/backfill.py [--large] [--keep-logs]

``--large`` runs 5,000 customers after 1,000 (memory must stay flat from one to the other).
Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth); creates and drops databases
named ops_bench_*; starts and stops fakestripe itself.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ heads sys.path, where its modules would shadow top-level ones
# (bench/fakestripe.py); the project root takes its place.
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._support import (  # noqa: E402
    Processes,
    bench_main,
    free_port,
    port_open,
    wait_until,
)

PG_HOST, PG_PORT = "127.0.0.1", 5432
LIMIT = 25  # test mode's requests per second
# The five types both commands mirror: (stripe_backfill type, dj-stripe model, table).
TYPES = [
    ("customer", "Customer", "djstripe_customer"),
    ("subscription", "Subscription", "djstripe_subscription"),
    ("invoice", "Invoice", "djstripe_invoice"),
    ("payment_intent", "PaymentIntent", "djstripe_paymentintent"),
    ("charge", "Charge", "djstripe_charge"),
]
TIMEOUT = 3600.0


class BenchError(Exception):
    """A precondition or a run failed; the message says what to look at."""


def pg_connect(dbname: str):
    import psycopg

    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user="postgres", dbname=dbname, autocommit=True
    )


@dataclass
class Run:
    label: str
    api_calls: int = 0
    by_route: dict = field(default_factory=dict)
    statuses: dict = field(default_factory=dict)
    wall: float = 0.0
    peak_mb: float = 0.0  # the largest process
    together_mb: float = 0.0  # the process and its children (writers) at once
    rows: dict = field(default_factory=dict)
    exit_code: int = 0


def _sample_rss(pid: int, peak: list[float]) -> None:
    """Keep in ``peak[0]`` the most memory (MB) ``pid`` and its children held at once: their
    proportional set sizes, so pages the forked writers still share with their parent count
    once, not once per process as resident sizes would."""

    def resident(p: int) -> float:
        with open(f"/proc/{p}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    while True:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                children = [int(c) for c in f.read().split()]
            total = resident(pid)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            return  # the process has ended
        for child in children:
            with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
                total += resident(child)
        peak[0] = max(peak[0], total)
        time.sleep(0.1)


class Bench:
    def __init__(self, args: argparse.Namespace, log_dir: Path) -> None:
        self.args = args
        self.log_dir = log_dir
        self.procs = Processes(log_dir)
        self.key = "sk_test_" + secrets.token_hex(16)
        self.databases: list[str] = []
        self.port = 0

    # -- fakestripe

    def call(self, method: str, path: str, params: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            body = urlencode(params or {}) if method == "POST" else None
            headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        if response.status >= 400:
            raise BenchError(f"fakestripe {method} {path}: {response.status} {payload[:300]!r}")
        return json.loads(payload)

    def fakestripe_start(self) -> None:
        self.port = free_port()
        self.procs.start(
            "fakestripe",
            [sys.executable, "-m", "fakestripe", "--host", "127.0.0.1", "--port",
             str(self.port), "--webhook-max-attempts", "1"],
            env=self.env("unused"), cwd=ROOT,
        )  # fmt: skip
        wait_until(lambda: port_open("127.0.0.1", self.port, 0.2), timeout=30, what="fakestripe")

    # -- child processes

    def env(self, dbname: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "PYTHONUNBUFFERED": "1",
                "DJANGO_SETTINGS_MODULE": "bench.djstripe_settings",
                "DJANGO_DEBUG": "false",
                "DJANGO_SECRET_KEY": "bench-" + secrets.token_urlsafe(40),
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
                "DJANGO_LOG_LEVEL": "WARNING",
                "DATABASE_URL": f"postgres://postgres@{PG_HOST}:{PG_PORT}/{dbname}",
                "STRIPE_API_BASE": f"http://127.0.0.1:{self.port}",
                "STRIPE_SECRET_KEY": self.key,
            }
        )
        return env

    def child(self, name: str, command: list[str], dbname: str) -> tuple[int, float, float, float]:
        """Run a child to the end: (exit code, wall seconds, peak resident MB of its largest
        process, peak resident MB of it and its children together, sampled every 0.1 s)."""
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            started = time.perf_counter()
            proc = subprocess.Popen(
                command, cwd=ROOT, env=self.env(dbname), stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            timer = threading.Timer(TIMEOUT, lambda: os.killpg(proc.pid, signal.SIGKILL))
            timer.start()
            together = [0.0]
            sampler = threading.Thread(target=_sample_rss, args=(proc.pid, together), daemon=True)
            sampler.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                timer.cancel()
            wall = time.perf_counter() - started
            sampler.join(1)
        proc.returncode = os.waitstatus_to_exitcode(status)
        return proc.returncode, wall, usage.ru_maxrss / 1024, together[0]

    def database(self, label: str) -> str:
        dbname = f"ops_bench_{label}_{os.getpid()}"
        with pg_connect("postgres") as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{dbname}"')
        self.databases.append(dbname)
        code, _, _, _ = self.child(
            f"schema-{label}",
            [sys.executable, "manage.py", "migrate", "--run-syncdb", "--no-input", "-v", "0"],
            dbname,
        )
        if code:
            raise BenchError(f"schema for {dbname} failed; see {self.log_dir}/schema-{label}.log")
        return dbname

    def rows(self, dbname: str) -> dict[str, int]:
        with pg_connect(dbname) as conn:
            return {
                t: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for t, _, table in TYPES
            }

    # -- one measured run

    def measure(self, label: str, command: list[str], *, limited: bool) -> Run:
        dbname = self.database(label)
        self.call("DELETE", "/_fake/faults")
        if limited:
            self.call("POST", "/_fake/faults", {"rate_limit": LIMIT})
        self.call("POST", "/_fake/stats/reset")
        code, wall, peak, together = self.child(label, command, dbname)
        stats = self.call("GET", "/_fake/stats")
        self.call("DELETE", "/_fake/faults")
        run = Run(
            label=label,
            api_calls=stats["total"],
            by_route=stats["by_route"],
            statuses=stats["by_status"],
            wall=wall,
            peak_mb=peak,
            together_mb=together,
            rows=self.rows(dbname),
            exit_code=code,
        )
        self.drop(dbname)
        # As each run ends, so a failure later in the bench keeps what was measured.
        print(
            f"[{label}] exit {code}, {run.api_calls} API calls, {wall:.1f} s, {peak:.0f} MB "
            f"({together:.0f} MB with its writers), "
            f"{sum(run.rows.values()):,} rows, {run.statuses.get('429', 0)} answered 429",
            file=sys.stderr,
            flush=True,
        )
        return run

    def drop(self, dbname: str) -> None:
        with pg_connect("postgres") as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        self.databases.remove(dbname)

    # -- the bench

    def size(self, customers: int) -> dict:
        self.call("POST", "/_fake/reset")
        seeded = self.call("POST", "/_fake/bulk/seed", {"customers": customers})["created"]
        objects = {t: seeded.get(t, 0) for t, _, _ in TYPES}
        product = [sys.executable, "manage.py", "stripe_backfill", "--types",
                   *[t for t, _, _ in TYPES]]  # fmt: skip
        baseline = [sys.executable, "manage.py", "djstripe_sync_models",
                    *[m for _, m, _ in TYPES]]  # fmt: skip
        runs = {
            "product": self.measure(
                f"backfill_{customers}", [*product, "--max-rps", "1000"], limited=False
            ),
            "product_limited": self.measure(
                f"backfill_{customers}_limited", [*product, "--max-rps", str(LIMIT)], limited=True
            ),
            "baseline": self.measure(f"djstripe_{customers}", baseline, limited=False),
            "baseline_limited": self.measure(
                f"djstripe_{customers}_limited", baseline, limited=True
            ),
        }
        return {"customers": customers, "seeded": seeded, "objects": objects, "runs": runs}

    def run(self) -> None:
        with pg_connect("postgres"):
            pass
        self.fakestripe_start()
        sizes = [1000, 5000] if self.args.large else [1000]
        started = time.perf_counter()
        results = [self.size(n) for n in sizes]
        self.report(results, time.perf_counter() - started)

    # -- the report

    def report(self, results: list[dict], wall: float) -> None:
        print(
            "Backfill of five types (customer, subscription, invoice, payment_intent, charge) "
            "from fakestripe into fresh PostgreSQL databases;"
        )
        print(
            f"each command in its own process; {os.cpu_count()} CPUs, load average "
            f"{os.getloadavg()[0]:.1f} at the end. Floor at the limit = API calls / {LIMIT}."
        )
        for result in results:
            objects = sum(result["objects"].values())
            seeded = ", ".join(f"{t} {n:,}" for t, n in result["objects"].items())
            print()
            print(f"{result['customers']:,} customers: {objects:,} objects ({seeded}; also "
                  f"{result['seeded'].get('payment_method', 0):,} payment methods, "
                  f"{result['seeded'].get('balance_transaction', 0):,} balance transactions)")  # fmt: skip
            header = (
                f"{'command':<24}{'API calls':>10}{'/1k obj':>9}{'wall s':>9}{'peak MB':>9}"
                f"{'rows/objects':>16}{f'at {LIMIT}/s s':>12}{'floor s':>9}{'x floor':>9}"
            )
            print(header)
            print("-" * len(header))
            runs = result["runs"]
            for name, key in (("djstripe_sync_models", "baseline"), ("stripe_backfill", "product")):
                run, limited = runs[key], runs[f"{key}_limited"]
                rows = sum(run.rows.values())
                floor = run.api_calls / LIMIT
                limited_rows = sum(limited.rows.values())
                at_limit = f"{limited.wall:.1f}"
                ratio = f"{limited.wall / floor:.2f}" if floor else "-"
                if limited_rows < objects:
                    at_limit += "*"
                    ratio = "gave up"
                print(
                    f"{name:<24}{run.api_calls:>10,}{run.api_calls / objects * 1000:>9.1f}"
                    f"{run.wall:>9.1f}{run.peak_mb:>9.0f}{f'{rows:,}/{objects:,}':>16}"
                    f"{at_limit:>12}{floor:>9.1f}{ratio:>9}"
                )
            base, prod = runs["baseline"], runs["product"]
            print(
                f"ratio djstripe_sync_models / stripe_backfill: API calls x"
                f"{base.api_calls / max(prod.api_calls, 1):.1f}, wall x"
                f"{base.wall / max(prod.wall, 1e-9):.2f}"
            )
            for key in ("baseline_limited", "product_limited"):
                limited = runs[key]
                if sum(limited.rows.values()) < objects:
                    print(
                        f"  * {key.split('_')[0]} at {LIMIT}/s: exit {limited.exit_code} after "
                        f"{limited.wall:.1f} s with {sum(limited.rows.values()):,} rows; "
                        f"{limited.statuses.get('429', 0)} answers were 429"
                    )
            product_limited = runs["product_limited"]
            print(
                f"  stripe_backfill at {LIMIT}/s: {product_limited.api_calls} requests "
                f"({product_limited.statuses.get('429', 0)} answered 429) in "
                f"{product_limited.wall:.1f} s; unlimited it took {prod.wall:.1f} s. Peak memory "
                f"{prod.peak_mb:.0f} MB in its largest process, {prod.together_mb:.0f} MB with "
                f"its writer processes"
            )
            top = sorted(base.by_route.items(), key=lambda kv: -kv[1])[:5]
            print("  djstripe_sync_models calls: " + ", ".join(f"{r} {n:,}" for r, n in top))
            print("  stripe_backfill calls: " + ", ".join(
                f"{r} {n:,}" for r, n in sorted(prod.by_route.items(), key=lambda kv: -kv[1])
            ))  # fmt: skip
        if len(results) > 1:
            small, large = (r["runs"]["product"] for r in (results[0], results[-1]))
            print()
            print(
                f"stripe_backfill peak memory: {small.peak_mb:.0f} MB at "
                f"{results[0]['customers']:,} customers, {large.peak_mb:.0f} MB at "
                f"{results[-1]['customers']:,} (x{large.peak_mb / small.peak_mb:.2f}); with its "
                f"writers {small.together_mb:.0f} MB and {large.together_mb:.0f} MB "
                f"(x{large.together_mb / max(small.together_mb, 1e-9):.2f})"
            )
        print()
        print(f"(wall time {wall:.0f} s)")

    def cleanup(self) -> None:
        self.procs.stop_all()
        for dbname in list(self.databases):
            try:
                self.drop(dbname)
            except Exception as exc:
                print(f"warning: could not drop {dbname}: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", action="store_true", help="also 5,000 customers")
    parser.add_argument("--keep-logs", action="store_true", help="keep the log directory")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return bench_main(
        lambda log_dir: Bench(args, log_dir), prefix="bench-backfill-", keep_logs=args.keep_logs
    )


if __name__ == "__main__":
    sys.exit(main())
