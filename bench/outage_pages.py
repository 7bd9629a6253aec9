"""How long a customer waits for a page while Stripe is slow and failing: the product's pages
(Stripe calls under `stripe_api.customer_facing`) vs the same services called with the
worker's patient settings (30 s timeouts, 3 network retries), the baseline.

fakestripe runs in process with faults `latency` (seconds per API request) and `error_rate`
1.0 (every request answers 500 after the latency). Pages are driven with Django's test client:
Buy (creates the customer and the Checkout Session) and the return page (fetches the session).

Usage: .venv/bin/python bench/outage_pages.py [--latency 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import django_in_process, percentile  # noqa: E402
from fakestripe.client import FakeStripeClient  # noqa: E402
from fakestripe.server import FakeStripeServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-outage-")
    fake = FakeStripeServer("127.0.0.1", 0).start()
    fs = FakeStripeClient(fake.url)
    # Django's test client drives the pages, outside a test run.
    django_in_process(
        stripe_url=fake.url, db_path=f"{tmp}/db.sqlite3", DJANGO_ALLOWED_HOSTS="testserver",
        DJANGO_LOG_LEVEL="CRITICAL",
    )  # fmt: skip

    from django.contrib.auth import get_user_model
    from django.test import Client

    from billing import stripe_api
    from orders import services
    from orders.demo import demo_catalog_seed
    from orders.services import catalog_sync

    demo_catalog_seed()
    catalog_sync()
    price_id = next(
        p.id
        for p in stripe_api.list_all(object_type="price")
        if p.currency == "usd" and not p.recurring
    )
    user = get_user_model().objects.create_user(username="bench", email="bench@example.com")
    client = Client()
    client.force_login(user)
    fs.set_faults(latency=args.latency, error_rate=1.0)

    def page_buy() -> None:
        token = secrets.token_urlsafe(24)
        answer = client.post(
            "/buy/", {"price_id": price_id, "quantity": 1, "request_token": token}, follow=True
        )
        # the customer was told what to do (not a 400 or an error page)
        assert "payment service is not answering" in answer.content.decode(), answer.status_code

    def baseline_buy() -> None:
        with contextlib.suppress(stripe_api.StripeAPIError):
            services.order_checkout_start(
                user=user, price_id=price_id, quantity=1, request_token=secrets.token_hex(24)
            )

    results: dict[str, list[float]] = {}
    for name, run in (
        ("buy page (customer_facing)", page_buy),
        ("baseline (no budget)", baseline_buy),
    ):
        times = []
        for _ in range(args.repeat):
            started = time.monotonic()
            run()
            times.append(time.monotonic() - started)
        results[name] = times

    print(
        f"Buy while every Stripe request takes {args.latency:g} s and answers 500 "
        f"({args.repeat} runs each), seconds until the customer has an answer"
    )
    for name, times in results.items():
        print(f"  {name:28s} p50 {percentile(times, 50):5.1f}  max {max(times):5.1f}")
    page, base = (percentile(t, 50) for t in results.values())
    print(f"  the page answers {base / page:.1f}x sooner than the baseline (p50)")
    fake.stop()


if __name__ == "__main__":
    main()
