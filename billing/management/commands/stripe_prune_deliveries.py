"""Drop the webhook delivery log and refusal counts past retention; events and outcomes stay.

The periodic task ``billing.prune`` (Celery beat) does this daily with
BILLING_WEBHOOK_RETENTION_DAYS.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from billing.webhooks import retention


class Command(BaseCommand):
    help = "Remove delivery records and refusal counts older than --older-than DAYS."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS")

    def handle(self, *args, older_than, **options):
        if older_than < 0:
            raise CommandError("--older-than must be zero or more days")
        pruned = retention.deliveries_prune(older_than=timedelta(days=older_than))
        self.stdout.write(
            self.style.SUCCESS(
                f"Pruned {pruned['deliveries']} delivery(ies), {pruned['reject_counts']} "
                f"refusal count(s) and {pruned['reject_samples']} refusal sample(s)."
            )
        )
