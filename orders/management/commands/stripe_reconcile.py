"""Compare orders with Stripe's objects; report (and with --fix repair) what disagrees."""

import json

from django.core.management.base import BaseCommand, CommandError

from billing.management.options import parse_when
from orders import reconcile


class Command(BaseCommand):
    help = (
        "Find orders whose Stripe objects are missing or disagree, Stripe objects whose link "
        "keys point at nothing, paid sessions or invoices whose order is not fulfilled, and "
        "related objects lacking their link keys. --fix repairs what the product's services "
        "can. The report is kept and shown in the admin. Exits 1 while findings stand."
    )

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true", help="repair what can be repaired")
        parser.add_argument(
            "--format", choices=("table", "json"), default="table", dest="output_format"
        )
        parser.add_argument("--since", help="only Stripe objects and orders created since DATE")

    def handle(self, *args, fix, output_format, since, **options):
        report = reconcile.reconcile_run(fix=fix, since=parse_when(since) if since else None)
        if output_format == "json":
            self.stdout.write(
                json.dumps(
                    {
                        "report": report.pk,
                        "fix": report.fix,
                        "counts": report.counts,
                        "api_calls": report.api_calls,
                        "findings": report.findings,
                    },
                    indent=2,
                )
            )
        else:
            self._table(report)
        standing = reconcile.unresolved(report)
        if standing:
            raise CommandError(f"{standing} finding(s) need attention (report #{report.pk}).")

    def _table(self, report) -> None:
        if not report.findings:
            self.stdout.write(f"No findings ({report.api_calls} API calls). Report #{report.pk}.")
            return
        columns = [("kind", 20), ("object", 34), ("order", 26), ("detail", 0)]
        self.stdout.write("".join(f"{name:<{width}}" for name, width in columns))
        for f in report.findings:
            outcome = f["fixed"] or (f"fixable: {f['fix']}" if f["fix"] else "needs a person")
            self.stdout.write(
                f"{f['kind']:<20}{f['stripe_id']:<34}{f['order'] or '-':<26}{f['detail']}"
                f"\n{'':<20}-> {outcome}"
            )
        counts = ", ".join(f"{kind} {n}" for kind, n in report.counts.items())
        self.stdout.write(f"\n{counts}. {report.api_calls} API calls. Report #{report.pk}.")
