"""Drop raw webhook bodies past retention; the delivery log, events and outcomes stay."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from billing import services


class Command(BaseCommand):
    help = "Remove raw delivery bodies older than --older-than DAYS."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS")

    def handle(self, *args, older_than, **options):
        if older_than < 0:
            raise CommandError("--older-than must be zero or more days")
        count = services.deliveries_prune(older_than=timedelta(days=older_than))
        self.stdout.write(self.style.SUCCESS(f"Pruned the bodies of {count} delivery(ies)."))
