"""`python -m fakestripe --host 127.0.0.1 --port 12111 [--state FILE] [fault flags]`."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys

from .server import FakeStripeServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fakestripe", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (loopback)")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--state", metavar="FILE", help="persist state in this journal file")
    parser.add_argument(
        "--webhook-retry-base",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="retry after SECONDS * 2**(attempt-1)",
    )
    parser.add_argument("--webhook-max-attempts", type=int, default=8)
    parser.add_argument("--webhook-timeout", type=float, default=10.0, metavar="SECONDS")
    faults = parser.add_argument_group("faults (also settable via POST /_fake/faults)")
    faults.add_argument("--duplicate-deliveries", type=int, metavar="N")
    faults.add_argument("--shuffle-window", type=int, metavar="N")
    faults.add_argument("--delivery-delay", type=float, metavar="SECONDS")
    faults.add_argument("--endpoint-fail-first", type=int, metavar="N")
    faults.add_argument("--rate-limit", type=int, metavar="PER_SECOND")
    faults.add_argument("--error-rate", type=float, metavar="PROBABILITY")
    faults.add_argument("--error-every", type=int, metavar="N")
    faults.add_argument("--latency", type=float, metavar="SECONDS")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s fakestripe %(message)s",
    )
    server = FakeStripeServer(
        args.host,
        args.port,
        webhook_retry_base=args.webhook_retry_base,
        webhook_max_attempts=args.webhook_max_attempts,
        webhook_timeout=args.webhook_timeout,
        state_file=args.state,
    )
    names = (
        "duplicate_deliveries",
        "shuffle_window",
        "delivery_delay",
        "endpoint_fail_first",
        "rate_limit",
        "error_rate",
        "error_every",
        "latency",
    )
    server.emulator.faults.update(
        {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    )
    # SIGTERM ends serve_forever like Ctrl-C, so the journal is compacted on the way out.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    logging.getLogger("fakestripe").info("listening on http://%s:%s", args.host, args.port)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
