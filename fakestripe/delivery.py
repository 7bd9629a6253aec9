"""Webhook delivery from background threads, with signing, retries and delivery faults.

Targets are webhook endpoints (`we_`) and event destinations (`ed_`) of type
`webhook_endpoint`: a snapshot destination gets the v1 event as a webhook endpoint does, a
thin one the thin notification of a v2 event (see thin.py), signed the same way.

Each endpoint has its own worker and queue, so a slow receiver delays only its own events,
and first attempts leave in event creation order. A failed attempt is retried after
`retry_base * 2**(attempt - 1)` seconds, up to `max_attempts` attempts, without holding up
later events (as Stripe does). Every attempt is recorded for /_fake/deliveries.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import random
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import DEFAULT_API_VERSION, objects, versions

if TYPE_CHECKING:
    from .app import Emulator

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
MAX_RECORDS = 100_000
WINDOW_QUIET = 0.2  # seconds without new events after which a partial shuffle window leaves


def sign(payload: str, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def payload_for(event: dict[str, Any], target: dict[str, Any]) -> tuple[dict, str, str, str]:
    """(body, signing secret, url, payload kind) of `event` delivered to `target`."""
    if target["object"] == "webhook_endpoint":
        body = versions.render_event(event, target["api_version"])
        return body, target["_secret"], target["url"], "snapshot"
    if event["object"] == "v2.core.event":
        return objects.thin_notification(event), target["_secret"], target["_url"], "thin"
    version = target.get("snapshot_api_version") or DEFAULT_API_VERSION
    return versions.render_event(event, version), target["_secret"], target["_url"], "snapshot"


def post(url: str, payload: str, headers: dict[str, str], timeout: float) -> int:
    parts = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        connection.request("POST", path, body=payload.encode(), headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


class _EndpointQueue:
    def __init__(self) -> None:
        self.heap: list[tuple[float, int, dict[str, Any]]] = []
        self.window: list[dict[str, Any]] = []  # held back while shuffle_window fills
        self.window_touched = 0.0
        self.thread: threading.Thread | None = None
        self.retired = False  # set by reset: the worker exits instead of idling forever


class Deliveries:
    def __init__(
        self,
        emulator: Emulator,
        *,
        retry_base: float = 10.0,
        max_attempts: int = 8,
        timeout: float = 10.0,
    ) -> None:
        self.emu = emulator
        self.retry_base = retry_base
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.cond = threading.Condition()
        self.queues: dict[str, _EndpointQueue] = {}
        # Attempt history for /_fake/deliveries, bounded so a long demo does not grow forever.
        self.records: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDS)
        self.attempts: dict[tuple[str, str], int] = {}
        self.delivered: set[tuple[str, str]] = set()
        self.in_flight = 0
        self.generation = 0  # bumped by reset so stale tasks are dropped
        self._seq = itertools.count()
        self._stopping = False

    # -- queueing ----------------------------------------------------------------------

    def enqueue(self, event_id: str, endpoint_id: str, *, resend: bool = False) -> None:
        task = {
            "event": event_id,
            "endpoint": endpoint_id,
            "resend": resend,
            "generation": self.generation,
        }
        window = self.emu.faults.get("shuffle_window")
        with self.cond:
            queue = self._queue(endpoint_id)
            if window and window > 1 and not resend:
                queue.window.append(task)
                queue.window_touched = time.monotonic()
                if len(queue.window) >= window:
                    self._release_window(queue)
            else:
                self._push(queue, task, 0.0)
            self.cond.notify_all()

    def _queue(self, endpoint_id: str) -> _EndpointQueue:
        queue = self.queues.get(endpoint_id)
        if queue is None:
            queue = self.queues[endpoint_id] = _EndpointQueue()
        if queue.thread is None:
            queue.thread = threading.Thread(
                target=self._work,
                args=(endpoint_id, queue),
                daemon=True,
                name=f"fakestripe-webhooks-{endpoint_id}",
            )
            queue.thread.start()
        return queue

    def _push(self, queue: _EndpointQueue, task: dict[str, Any], after: float) -> None:
        delay = self.emu.faults.get("delivery_delay") or 0.0
        heapq.heappush(queue.heap, (time.monotonic() + after + delay, next(self._seq), task))

    def _release_window(self, queue: _EndpointQueue) -> None:
        random.shuffle(queue.window)
        for task in queue.window:
            self._push(queue, task, 0.0)
        queue.window = []

    # -- worker ------------------------------------------------------------------------

    def _work(self, endpoint_id: str, queue: _EndpointQueue) -> None:
        while True:
            with self.cond:
                while True:
                    if self._stopping or queue.retired:
                        return
                    now = time.monotonic()
                    if queue.heap and queue.heap[0][0] <= now:
                        _, _, task = heapq.heappop(queue.heap)
                        self.in_flight += 1
                        break
                    timeouts = [queue.heap[0][0] - now] if queue.heap else []
                    if queue.window:
                        # A partial window is released once its burst has been quiet a while.
                        quiet = now - queue.window_touched
                        if quiet >= WINDOW_QUIET:
                            self._release_window(queue)
                            continue
                        timeouts.append(WINDOW_QUIET - quiet)
                    self.cond.wait(min(timeouts) if timeouts else None)
            try:
                if task["generation"] == self.generation:
                    self._attempt(task)
            finally:
                with self.cond:
                    self.in_flight -= 1
                    self.cond.notify_all()

    def _attempt(self, task: dict[str, Any]) -> None:
        store = self.emu.store
        key = (task["event"], task["endpoint"])
        with store.lock:
            event = store.get(task["event"])
            endpoint = store.get(task["endpoint"])
            if event is None or endpoint is None or endpoint.get("deleted"):
                return
            if endpoint.get("status") != "enabled" and not task["resend"]:
                return
            rendered, secret, url, kind = payload_for(event, endpoint)
        with self.cond:
            attempt = self.attempts[key] = self.attempts.get(key, 0) + 1
        payload = json.dumps(rendered, indent=2)
        forced = attempt <= self.emu.faults.fail_first(task["endpoint"])
        ok = False
        for copy_number in range(self.emu.faults.get("duplicate_deliveries")):
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                "Stripe-Signature": sign(payload, secret, timestamp),
                "Accept": "*/*; q=0.5, application/xml",
                "Cache-Control": "no-cache",
            }
            started = time.monotonic()
            status, error = None, None
            try:
                status = post(url, payload, headers, self.timeout)
            except TimeoutError:
                error = "timeout"
            except OSError as exc:
                error = f"{type(exc).__name__}: {exc}"
            succeeded = status is not None and 200 <= status < 300 and not forced
            ok = ok or succeeded
            self._record(task, attempt, status, error, started, forced, copy_number, url, kind)
        if ok:
            with store.lock, self.cond:
                if key not in self.delivered:
                    self.delivered.add(key)
                    event = store.get(task["event"])
                    if event is not None and event.get("pending_webhooks", 0) > 0:
                        event["pending_webhooks"] -= 1
                        store.save(event)
        elif attempt < self.max_attempts and task["generation"] == self.generation:
            with self.cond:
                queue = self._queue(task["endpoint"])
                self._push(queue, task, self.retry_base * 2 ** (attempt - 1))
                self.cond.notify_all()

    def _record(
        self, task, attempt, status, error, started, forced, copy_number, url, kind
    ) -> None:
        record = {
            "event": task["event"],
            "endpoint": task["endpoint"],
            "payload": kind,
            "url": url,
            "attempt": attempt,
            "status": status,
            "error": error if error else ("forced_failure" if forced else None),
            "forced_failure": forced,
            "duplicate": copy_number > 0,
            "resend": task["resend"],
            "at": time.time(),
            "duration_ms": round((time.monotonic() - started) * 1000, 2),
        }
        with self.cond:
            self.records.append(record)

    # -- control -----------------------------------------------------------------------

    def list(self, event: str | None = None, endpoint: str | None = None) -> list[dict]:
        with self.cond:
            return [
                r
                for r in self.records
                if (event is None or r["event"] == event)
                and (endpoint is None or r["endpoint"] == endpoint)
            ]

    def idle(self) -> bool:
        return self.in_flight == 0 and all(
            not q.heap and not q.window for q in self.queues.values()
        )

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.idle():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cond.wait(min(remaining, 0.05))
            return True

    def reset(self) -> None:
        with self.cond:
            self.generation += 1
            for queue in self.queues.values():
                queue.heap.clear()
                queue.window.clear()
                queue.retired = True
            self.queues.clear()
            self.records.clear()
            self.attempts.clear()
            self.delivered.clear()
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self._stopping = True
            self.cond.notify_all()
