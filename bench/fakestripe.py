"""Customer create/retrieve throughput of fakestripe beside localstripe, at 1k and 100k objects.

Both emulators run as separate processes on loopback and are measured the same way: one
keep-alive HTTP connection sending real API requests (POST /v1/customers, GET
/v1/customers/{id}) for a fixed time. fakestripe is filled through its bulk endpoint;
localstripe has none, so it is filled by ordinary creates within a time budget, and where
the budget runs out the table says how far it got.

    .venv/bin/python bench/fakestripe.py

Environment: LOCALSTRIPE_VENV (default /tmp/localstripe-venv; created with pip if absent),
BENCH_SECONDS (per measurement, default 3), LOCALSTRIPE_FILL_BUDGET (seconds, default 60).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk_test_bench0000000000000000000000"
SIZES = (1_000, 100_000)
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
FILL_BUDGET = float(os.environ.get("LOCALSTRIPE_FILL_BUDGET", "60"))
# A throwaway venv, kept out of the project so localstripe never becomes a dependency.
LOCALSTRIPE_VENV = Path(os.environ.get("LOCALSTRIPE_VENV", "/tmp/localstripe-venv"))  # noqa: S108


class Connection:
    """One keep-alive connection speaking Stripe's form-encoded API."""

    def __init__(self, port: int) -> None:
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {KEY}"}

    def request(self, method: str, path: str, params: dict | None = None) -> dict:
        body = urlencode(params) if params else None
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.http.request(method, path, body=body, headers=headers)
        response = self.http.getresponse()
        payload = response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:200]!r}")
        return json.loads(payload)

    def create(self, n: int) -> str:
        return self.request("POST", "/v1/customers", {"email": f"bench{n}@example.com"})["id"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def start_fakestripe(port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "fakestripe", "--port", str(port)]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def localstripe_binary() -> Path | None:
    binary = LOCALSTRIPE_VENV / "bin" / "localstripe"
    if not binary.exists():
        print(f"installing localstripe into {LOCALSTRIPE_VENV} ...", flush=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(LOCALSTRIPE_VENV)], check=True)
            subprocess.run([str(LOCALSTRIPE_VENV / "bin" / "pip"), "install", "-q", "localstripe"],
                           check=True)  # fmt: skip
        except subprocess.CalledProcessError as error:
            print(f"could not install localstripe: {error}")
            return None
    return binary


def start_localstripe(port: int) -> subprocess.Popen | None:
    binary = localstripe_binary()
    if binary is None:
        return None
    # localstripe keeps its state in /tmp/localstripe.pickle; start from scratch each run.
    return subprocess.Popen([str(binary), "--port", str(port), "--from-scratch"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def rate(operation, seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        operation(count)
        count += 1
    return count / elapsed


def fill_fakestripe(conn: Connection, have: int, target: int, ids: list[str]) -> tuple[int, str]:
    while have < target:
        chunk = min(target - have, 50_000)
        ids.extend(conn.request("POST", "/_fake/bulk/customers", {"count": chunk})["sample"])
        have += chunk
    return have, ""


def fill_by_creates(conn: Connection, have: int, target: int, ids: list[str]) -> tuple[int, str]:
    deadline = time.monotonic() + FILL_BUDGET
    while have < target:
        if time.monotonic() > deadline:
            return have, f"fill capped at {FILL_BUDGET:.0f} s"
        ids.append(conn.create(have))
        have += 1
    return have, ""


def run(name: str, process: subprocess.Popen, port: int, fill) -> list[dict]:
    rows: list[dict] = []
    try:
        wait_listening(port, process)
        conn = Connection(port)
        have, ids = 0, []
        for size in SIZES:
            started = time.monotonic()
            have, note = fill(conn, have, size, ids)
            fill_seconds = time.monotonic() - started
            print(f"{name}: {have} customers stored ({fill_seconds:.1f} s to fill)", flush=True)
            create = rate(lambda n: ids.append(conn.create(n)), SECONDS)
            sample = ids[:]
            retrieve = rate(
                lambda n, ids=sample: conn.request("GET", f"/v1/customers/{random.choice(ids)}"),
                SECONDS,
            )
            rows.append({"server": name, "size": size, "stored": have, "create": create,
                         "retrieve": retrieve, "note": note})  # fmt: skip
            have += int(create * SECONDS)
            if note:
                break  # the next size would only be further out of reach
    finally:
        process.terminate()
        process.wait(10)
    return rows


def main() -> None:
    results = []
    port = free_port()
    results += run("fakestripe", start_fakestripe(port), port, fill_fakestripe)
    port = free_port()
    localstripe = start_localstripe(port)
    if localstripe is not None:
        results += run("localstripe", localstripe, port, fill_by_creates)
    by_key = {(r["server"], r["size"]): r for r in results}
    print()
    print(f"customer create / retrieve, requests per second ({SECONDS:.0f} s each, "
          "one keep-alive connection)")  # fmt: skip
    header = f"{'objects':>8} | {'op':8} | {'fakestripe':>10} | {'localstripe':>11} | {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for size in SIZES:
        ours, theirs = by_key.get(("fakestripe", size)), by_key.get(("localstripe", size))
        short = theirs is not None and theirs["stored"] < size
        mark = "*" if short else " "
        for op in ("create", "retrieve"):
            mine = f"{ours[op]:10.0f}" if ours else f"{'-':>10}"
            other = f"{theirs[op]:10.0f}{mark}" if theirs else f"{'n/a':>11}"
            ratio = f"{ours[op] / theirs[op]:6.1f}x" if ours and theirs else f"{'-':>7}"
            print(f"{size:>8} | {op:8} | {mine} | {other} | {ratio}{mark}")
    for row in results:
        if row["stored"] < row["size"]:
            print(
                f"* {row['server']} held only {row['stored']:,} of {row['size']:,} objects "
                f"({row['note']}): its figures on that row are at that smaller size."
            )
    if not by_key.get(("localstripe", SIZES[-1])) and by_key.get(("localstripe", SIZES[0])):
        print(f"note: localstripe has no figure at {SIZES[-1]:,} objects.")


if __name__ == "__main__":
    main()
