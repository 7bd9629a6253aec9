"""Read-only admin for the operators' commands: backfill runs and reconcile reports.

Registered from ``billing/admin.py`` (imported at its end). Nothing here changes anything:
the commands write these rows, the admin shows them.
"""

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from billing.admin.base import ReadOnlyAdmin, ReadOnlyInline
from billing.models import BackfillFailure, BackfillProgress, BackfillRun, ReconcileReport


class ProgressInline(ReadOnlyInline):
    model = BackfillProgress
    fields = (
        "object_type",
        "done",
        "pages",
        "created",
        "updated",
        "unchanged",
        "linked",
        "unlinked",
        "errors",
        "api_calls",
        "cursor",
        "updated_at",
    )
    readonly_fields = fields


class FailureInline(ReadOnlyInline):
    model = BackfillFailure
    fields = ("object_type", "stripe_id", "error", "at")
    readonly_fields = fields


@admin.register(BackfillRun)
class BackfillRunAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "status", "started_at", "finished_at", "max_rps", "since")
    list_filter = ("status",)
    readonly_fields = [f.name for f in BackfillRun._meta.fields]
    inlines = [ProgressInline, FailureInline]


@admin.register(ReconcileReport)
class ReconcileReportAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "fix", "summary", "api_calls")
    list_filter = ("fix",)
    fields = ("created_at", "fix", "summary", "api_calls", "findings_table")
    readonly_fields = fields

    @admin.display(description="findings")
    def summary(self, obj):
        return ", ".join(f"{kind.replace('_', ' ')}: {n}" for kind, n in obj.counts.items()) or "-"

    @admin.display(description="findings")
    def findings_table(self, obj):
        if not obj.findings:
            return "None: Stripe and the orders agree."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{} <code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f["kind"].replace("_", " "),
                    f["object_type"],
                    f["stripe_id"],
                    f["order"] or "-",
                    f["detail"],
                    f["fixed"] or (f"fixable: {f['fix']}" if f["fix"] else "needs a person"),
                )
                for f in obj.findings
            ),
        )
        return format_html(
            "<table><thead><tr><th>kind</th><th>object</th><th>order</th><th>detail</th>"
            "<th>outcome</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )
