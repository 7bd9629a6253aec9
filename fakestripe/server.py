"""HTTP front end (stdlib ThreadingHTTPServer) and the programmatic `FakeStripeServer`."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .app import Emulator

log = logging.getLogger("fakestripe")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections, as with Stripe
    server_version = "fakestripe"
    sys_version = ""
    # Headers and body leave in one write; with Nagle's algorithm on, a separate small body
    # write waits for the client's delayed ACK (~40 ms per request on loopback).
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        emulator: Emulator = self.server.emulator  # type: ignore[attr-defined]
        response = emulator.handle(self.command, self.path, dict(self.headers.items()), body)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

    def log_message(self, format: str, *args) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class FakeStripeServer:
    """The emulator on a background thread: `start()` returns once it is listening."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        webhook_retry_base: float = 10.0,
        webhook_max_attempts: int = 8,
        webhook_timeout: float = 10.0,
        state_file: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.emulator = Emulator(
            state_file=state_file,
            webhook_retry_base=webhook_retry_base,
            webhook_max_attempts=webhook_max_attempts,
            webhook_timeout=webhook_timeout,
        )
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeStripeServer:
        self._httpd = _Server((self.host, self.port), _Handler)
        self._httpd.emulator = self.emulator  # type: ignore[attr-defined]
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.1,), name="fakestripe-http", daemon=True
        )
        self._thread.start()
        self.emulator.start_background()
        return self

    def serve_forever(self) -> None:
        """Run in the calling thread (the CLI) until interrupted."""
        self._httpd = _Server((self.host, self.port), _Handler)
        self._httpd.emulator = self.emulator  # type: ignore[attr-defined]
        self.port = self._httpd.server_address[1]
        self.emulator.start_background()
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()
            self.emulator.close()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        self.emulator.close()

    def __enter__(self) -> FakeStripeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
