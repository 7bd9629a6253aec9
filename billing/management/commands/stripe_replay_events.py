"""Store and process the Stripe events of the last 30 days that never reached the webhook."""

from django.core.management.base import BaseCommand, CommandError

from billing.management.options import parse_when, split_types
from billing.operators import replay


class Command(BaseCommand):
    help = (
        "List events from Stripe's events API since a time (its 30-day window) and store and "
        "process, through the normal pipeline, those never received here. Running it again "
        "changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since", required=True, help="a time (2026-11-20T08:00Z) or date, within 30 days"
        )
        parser.add_argument(
            "--types",
            nargs="+",
            metavar="TYPE",
            help="event types (default: those the webhook endpoints subscribe to)",
        )
        parser.add_argument(
            "--payload",
            choices=("snapshot", "thin"),
            default=None,
            help="which events list to read: v1 (snapshot) or v2 (thin); default "
            "STRIPE_EVENT_PAYLOAD",
        )

    def handle(self, *args, since, types, payload, **options):
        try:
            result = replay.events_replay(
                since=parse_when(since), types=split_types(types), style=payload
            )
        except replay.ReplayError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"{result.listed} event(s) listed: {result.stored} never received, now stored and "
            f"queued for processing; {result.known} already received. "
            f"{result.api_calls} API call(s)."
        )
