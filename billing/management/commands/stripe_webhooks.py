"""Webhook endpoints and event destinations as code: list, sync, upgrade to an API version or
to another payload style, ping, retire.

manage.py stripe_webhooks list
manage.py stripe_webhooks sync --base-url https://shop.example.com   (STRIPE_EVENT_PAYLOAD's kind)
manage.py stripe_webhooks upgrade --to 2026-08-26.dahlia [--base-url URL]
manage.py stripe_webhooks upgrade --payload thin [--base-url URL]    (or --payload snapshot)
manage.py stripe_webhooks ping ed_123 [--timeout 10]
manage.py stripe_webhooks retire we_123 [--yes] [--last]             (or ed_123)
"""

from __future__ import annotations

import getpass
import sys
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing import stripe_api
from billing.webhooks import destinations, endpoints, styles, upgrade


class Command(BaseCommand):
    help = (
        "List, sync, upgrade, ping and retire this deployment's Stripe webhook endpoints and "
        "event destinations."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="every endpoint and event destination, in Stripe and locally")
        sync = sub.add_parser(
            "sync",
            help="create or update this deployment's endpoint, or its thin event destination "
            "with STRIPE_EVENT_PAYLOAD=thin (idempotent)",
        )
        sync.add_argument("--base-url", default=None, help="public URL (default: SITE_URL)")
        upgrade = sub.add_parser(
            "upgrade", help="a second receiver: at another API version, or of another payload style"
        )
        target = upgrade.add_mutually_exclusive_group(required=True)
        target.add_argument("--to", dest="version", help="an API version, e.g. 2026-08-26.dahlia")
        target.add_argument(
            "--payload", choices=styles.STYLES, help="thin: an event destination; snapshot: back"
        )
        upgrade.add_argument("--base-url", default=None, help="default: the current endpoint's")
        ping = sub.add_parser("ping", help="send an event destination a ping; show the round trip")
        ping.add_argument("endpoint", help="the event destination id (ed_...)")
        ping.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for it")
        retire = sub.add_parser("retire", help="disable, then delete an endpoint or destination")
        retire.add_argument("endpoint", help="the endpoint or destination id (we_..., ed_...)")
        retire.add_argument("--yes", action="store_true", help="delete without asking")
        retire.add_argument(
            "--last",
            action="store_true",
            help="allow retiring this site's last enabled endpoint (events stop arriving)",
        )

        rotate = sub.add_parser(
            "rotate-secret",
            help="store the endpoint's new signing secret (read from stdin, never an argument)",
        )
        rotate.add_argument("endpoint", help="the endpoint id (we_...)")
        rotate.add_argument(
            "--overlap-hours",
            type=float,
            default=24,
            help="keep accepting the old secret this long (match the Dashboard's expiry)",
        )

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"_{action.replace('-', '_')}")(**options)
        except endpoints.EndpointError as exc:
            raise CommandError(str(exc)) from None
        except stripe_api.StripeAPIError as exc:
            raise CommandError(f"Stripe: {exc.message}") from None

    # -- list ------------------------------------------------------------------------------

    def _list(self, **options):
        rows = destinations.receivers_list()
        self.stdout.write(f"pinned API version: {settings.STRIPE_API_VERSION}")
        self.stdout.write(f"payload style (STRIPE_EVENT_PAYLOAD): {settings.STRIPE_EVENT_PAYLOAD}")
        if not rows:
            self.stdout.write(
                "No webhook endpoint or event destination. Create one: "
                "stripe_webhooks sync --base-url URL"
            )
        for e in rows:
            self._describe(e)

    def _describe(self, e: endpoints.Endpoint) -> None:
        where = ", ".join(
            part
            for part in (
                "in Stripe" if e.in_stripe else "not in Stripe",
                "local" if e.local else "NOT LOCAL (no secret here: deliveries are refused)",
            )
            if part
        )
        if e.payload == "thin":
            version = f"unversioned (objects fetched at {settings.STRIPE_API_VERSION})"
        else:
            version = e.api_version + ("" if e.version_matches else "  (differs from pinned)")
        self.stdout.write(f"\n{e.id}  {e.status}  [{where}]")
        self.stdout.write(f"  kind:     {e.kind}, {e.payload} events")
        self.stdout.write(f"  url:      {e.url}")
        self.stdout.write(f"  version:  {version}")
        self.stdout.write(f"  types:    {len(e.enabled_events)}: {', '.join(e.enabled_events)}")
        if e.missing_types:
            self.stdout.write(f"  MISSING:  {', '.join(e.missing_types)} (handled, not subscribed)")
        if e.extra_types:
            self.stdout.write(f"  EXTRA:    {', '.join(e.extra_types)} (subscribed, no handler)")
        self.stdout.write(f"  events received in the last 24 h: {e.received_24h}")

    # -- sync ------------------------------------------------------------------------------

    def _sync(self, *, base_url, **options):
        result = styles.receiver_sync(base_url=base_url or settings.SITE_URL)
        e = result.endpoint
        if result.action == "created":
            self.stdout.write(self.style.SUCCESS(f"Created {self._named(e)}: {e.url}"))
            self.stdout.write("Its signing secret is stored locally (never printed).")
        elif result.action == "updated":
            changed = ", ".join(sorted(result.changes))
            self.stdout.write(self.style.SUCCESS(f"Updated {e.id} ({changed}): {e.url}"))
        else:
            self.stdout.write(f"{e.id} is up to date: {e.url}")
        for other in result.others:
            self.stdout.write(
                self.style.WARNING(
                    f"Also pointing here: {self._named(other)}, {other.status}. "
                    f"Retire it when it is no longer needed: stripe_webhooks retire {other.id}"
                )
            )

    @staticmethod
    def _named(e: endpoints.Endpoint) -> str:
        if e.payload == "thin":
            return f"{e.id} (thin event destination)"
        return f"{e.id} ({e.kind} at {e.api_version})"

    # -- upgrade ---------------------------------------------------------------------------

    def _upgrade(self, *, version, payload, base_url, **options):
        if payload:
            result = styles.payload_upgrade(to_style=payload, base_url=base_url)
        else:
            result = upgrade.webhook_endpoint_upgrade(to_version=version, base_url=base_url)
        e = result.endpoint
        if result.created:
            self.stdout.write(self.style.SUCCESS(f"Created {self._named(e)}: {e.url}"))
        else:
            self.stdout.write(f"{self._named(e)} already delivers: {e.url}")
        if payload and payload != settings.STRIPE_EVENT_PAYLOAD:
            self.stdout.write(
                self.style.WARNING(
                    f"STRIPE_EVENT_PAYLOAD is {settings.STRIPE_EVENT_PAYLOAD}; set it to {payload} "
                    f"too, so `sync` and replays follow the new receiver."
                )
            )
        if version and version != settings.STRIPE_API_VERSION:
            self.stdout.write(
                self.style.WARNING(
                    f"The pinned version is {settings.STRIPE_API_VERSION}; set "
                    f"STRIPE_API_VERSION={version} too, or `check` will flag the endpoint."
                )
            )
        self.stdout.write(
            f"\nSince {e.id} was created (each event is stored once, by id; a change that came "
            f"both as a snapshot and as a thin event counts once):"
        )
        for o in result.overlap:
            style = o.endpoint.api_version if o.endpoint.payload == "snapshot" else "thin"
            self.stdout.write(
                f"  {o.endpoint.id}  {style:<22} {o.endpoint.status:<9} "
                f"received {o.received} change(s), {o.only_here} that no other receiver brought"
            )
        old = [o.endpoint.id for o in result.overlap if o.endpoint.id != e.id]
        if old:
            self.stdout.write(
                "\nRun this command again to watch. When the new endpoint brings everything, "
                f"retire the old: stripe_webhooks retire {old[0]}"
            )

    # -- retire ----------------------------------------------------------------------------

    def _retire(self, *, endpoint, yes, last, **options):
        self._refuse_if_at_risk(endpoint)
        successors = upgrade.webhook_endpoint_successors(endpoint_id=endpoint)
        if not successors and not last:
            raise CommandError(
                f"{endpoint} is the last enabled endpoint for its site: without it no event "
                f"arrives. Create its successor first (stripe_webhooks upgrade --to VERSION or "
                f"sync), or pass --last if the site is being shut down."
            )
        disabled = styles.receiver_disable(receiver_id=endpoint)
        self.stdout.write(f"Disabled {disabled.id} ({disabled.url}): Stripe sends it nothing more.")
        if not yes:
            answer = input(f"Delete {endpoint} in Stripe now? This cannot be undone. [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                self.stdout.write(
                    f"Left {endpoint} disabled, not deleted. Run retire again to delete it."
                )
                return
        # A delivery in flight when it was disabled may have failed since: check again.
        self._refuse_if_at_risk(endpoint)
        styles.receiver_delete(receiver_id=endpoint)
        self.stdout.write(self.style.SUCCESS(f"Deleted {endpoint}."))
        for s in successors:
            self.stdout.write(f"Events keep arriving through {self._named(s)}.")

    def _refuse_if_at_risk(self, endpoint: str) -> None:
        """Refuse while events would be lost. A disabled endpoint is enabled again: Stripe keeps
        retrying an endpoint re-enabled before the retry falls due (one due while it is
        disabled is dropped; resend that event from the Dashboard)."""
        at_risk = styles.receiver_at_risk(receiver_id=endpoint)
        if not at_risk:
            return
        message = upgrade.at_risk_message(endpoint_id=endpoint, at_risk=at_risk)
        if destinations.receiver_get(receiver_id=endpoint).status == "disabled":
            styles.receiver_disable(receiver_id=endpoint, disabled=False)
            message += (
                f" {endpoint} was disabled: it is enabled again so Stripe can retry them; resend "
                f"any whose retry fell due while it was disabled (Dashboard, Events, Resend)."
            )
        raise CommandError(message)

    # -- ping ------------------------------------------------------------------------------

    def _ping(self, *, endpoint, timeout, **options):
        if not endpoint.startswith("ed_"):
            raise CommandError(
                "Stripe pings event destinations only (ed_...); a v1 webhook endpoint has no ping."
            )
        sent = destinations.event_destination_ping(destination_id=endpoint)
        self.stdout.write(f"Sent {sent.event_id} to {endpoint}; waiting up to {timeout:g} s ...")
        ping = destinations.ping_wait(sent, timeout=timeout)
        if ping.received_at is None:
            raise CommandError(
                f"{sent.event_id} did not arrive within {timeout:g} s. Check that the "
                f"destination's URL reaches this deployment (stripe_webhooks list) and that "
                f"refused deliveries are not piling up (admin: rejected webhook counts)."
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Round trip: {ping.round_trip_ms:.0f} ms (sent, delivered, verified and "
                f"stored as {ping.event_id}; status {ping.status})."
            )
        )

    # -- rotate-secret ---------------------------------------------------------------------

    def _rotate_secret(self, *, endpoint, overlap_hours, **options):
        from djstripe.models import WebhookEndpoint

        row = WebhookEndpoint.objects.filter(id=endpoint).first()
        if row is None:
            raise CommandError(f"No local webhook endpoint {endpoint}.")
        if sys.stdin.isatty():
            secret = getpass.getpass(f"New signing secret of {endpoint} (whsec_...): ")
        else:
            secret = sys.stdin.readline()
        try:
            endpoints.webhook_secret_rotate(
                endpoint=row, new_secret=secret.strip(), overlap=timedelta(hours=overlap_hours)
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{endpoint} now verifies with the new secret; the old one is accepted for "
                f"{overlap_hours:g} more hour(s)."
            )
        )
