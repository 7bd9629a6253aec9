"""The support console's own admin views on one object: resync, reprocess, fetch missed events
(editing metadata: ``metadata_form``). Thin: each parses the request, checks the permission
(403 otherwise), calls one service and reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views import View

from billing import display, metadata, permissions, selectors
from billing.console import limits, reprocess, resync
from billing.operators import replay
from billing.stripe_api import StripeAPIError

# --- Stripe errors, in words a support person can act on -------------------------------------

_ERROR_ADVICE = {
    "not_found": "Stripe has no such object: it may have been deleted, or belong to another "
    "account or mode (test/live).",
    "rate_limit": "Stripe is rate limiting this account: wait a minute and try again.",
    "authentication": "Stripe refused the shop's API key: ask an operator to check "
    "STRIPE_SECRET_KEY. Nothing was changed.",
    "configuration": "The shop is not configured to reach Stripe: ask an operator. "
    "Nothing was changed.",
    "connection": "Stripe could not be reached: try again shortly; if it persists, check "
    "status.stripe.com.",
    "idempotency": "Stripe saw this exact request before with different content: reload the "
    "page and make the change again.",
}


def stripe_error_text(exc: StripeAPIError) -> str:
    advice = _ERROR_ADVICE.get(exc.kind, "")
    request = f" (Stripe request {exc.request_id})" if exc.request_id else ""
    return display.mask_secrets(" ".join(part for part in (advice, exc.message) if part) + request)


# --- Context shared by every mirrored object's page ----------------------------------------


@dataclass(frozen=True)
class ObjectAction:
    """A link another app offers on an object's page (the shop's Refund on a charge)."""

    label: str
    url: str
    element_id: str


# Object type -> callables (request, row) -> the actions this person may take on it; the shop
# registers its own from its AppConfig, so billing never imports it.
OBJECT_ACTIONS: dict[str, list[Callable[[HttpRequest, Any], list[ObjectAction]]]] = {}


def object_action_register(object_type: str, actions: Callable) -> None:
    registered = OBJECT_ACTIONS.setdefault(object_type, [])
    if actions not in registered:
        registered.append(actions)


def object_urls(model_admin, stripe_id: str) -> dict[str, str]:
    info = model_admin.opts.app_label, model_admin.opts.model_name
    return {
        name: display.admin_url("{}_{}".format(*info), stripe_id, name)
        for name in ("metadata", "resync", "reprocess", "fetch_events", "change")
    }


def object_context(model_admin, request: HttpRequest, obj) -> dict[str, Any]:
    """What the object's page adds to Django's: its metadata, console log and event history."""
    data = obj.stripe_data or {}
    user = request.user
    described = display.describe(model_admin.object_type, data, obj.id)
    title = " · ".join(part for part in (obj.id, described.amount, described.status) if part)
    return {
        "console": True,
        "console_title": title,
        # Django titles the page with str(obj); dj-stripe's reads "15.00 JPY" for ¥1,500.
        "subtitle": title,
        "object_type": model_admin.object_type,
        "described": described,
        "metadata_rows": sorted(described.metadata.items()),
        "link_keys": metadata.LINK_KEYS,
        "link_targets": model_admin._targets(obj),
        "events": selectors.event_history(stripe_ids=[obj.id]),
        "audits": selectors.audit_entries(stripe_ids=[obj.id]),
        "console_urls": object_urls(model_admin, obj.id),
        "dashboard_url": described.dashboard_url,
        "can_edit_metadata": model_admin.may_edit_metadata(request),
        "can_resync": model_admin.has_resync_permission(request),
        "can_reprocess": user.has_perm(permissions.REPROCESS),
        "can_fetch_events": user.has_perm(permissions.RESYNC),
        "object_actions": [
            action
            for actions in OBJECT_ACTIONS.get(model_admin.object_type, ())
            for action in actions(request, obj)
        ],
    }


class ConsoleView(View):
    """An action on one mirrored object: 404 for an unknown one, 403 without the permission."""

    model_admin = None
    required: list[str] = []

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.obj = self.model_admin.get_object(request, unquote(kwargs["object_id"]))
        if self.obj is None:
            raise Http404("No such object in the mirror.")
        if not self.model_admin.has_view_permission(request, self.obj):
            raise PermissionDenied
        self.object_type = self.model_admin.object_type
        self.urls = object_urls(self.model_admin, self.obj.id)

    def dispatch(self, request, *args, **kwargs):
        if not request.user.has_perms(self.permissions_needed()):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def permissions_needed(self) -> list[str]:
        return self.required

    def render(self, template: str, **context) -> TemplateResponse:
        opts = self.model_admin.opts
        return TemplateResponse(
            self.request,
            template,
            {
                **self.model_admin.admin_site.each_context(self.request),
                "opts": opts,
                "obj": self.obj,
                "object_type": self.object_type,
                "console_urls": self.urls,
                "changelist_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
                **context,
            },
        )

    def back(self, query: str = "") -> HttpResponseRedirect:
        # No #anchor: the page opens at its top, where the action's result message is.
        return HttpResponseRedirect(self.urls["change"] + query)

    def over_limit(self) -> HttpResponseRedirect | None:
        """Back to the object's page saying when to try again, if this person has made their
        minute's share of Stripe calls (``billing.console.limits``)."""
        if wait := limits.stripe_calls_wait(self.request.user):
            messages.error(self.request, limits.wait_text(wait))
            return self.back()
        return None


# --- Resync ------------------------------------------------------------------------------------


def resync_message(result: resync.Resynced) -> str:
    if result.deleted:
        return f"The object {result.stripe_id} no longer exists in Stripe; the mirror marks it deleted."
    if not result.changes:
        return f"Resynced {result.stripe_id} from Stripe: the mirror was already up to date."
    return (
        f"Resynced {result.stripe_id} from Stripe: {len(result.changes)} field(s) changed "
        "(shown under Console log)."
    )


class ResyncView(ConsoleView):
    def permissions_needed(self) -> list[str]:
        return permissions.resync_permissions(object_type=self.model_admin.object_type)

    def get(self, request, object_id):
        return self.render(
            "admin/billing/stripe_object/resync_confirm.html", title="Resync from Stripe"
        )

    def post(self, request, object_id):
        if refused := self.over_limit():
            return refused
        try:
            result = resync.object_resync(
                actor=request.user, object_type=self.object_type, stripe_id=self.obj.id
            )
        except StripeAPIError as exc:
            messages.error(request, f"Resync of {self.obj.id} failed. {stripe_error_text(exc)}")
            return self.back()
        messages.success(request, resync_message(result))
        return self.back(f"?audit={result.entry.pk}")


def resync_many(model_admin, request: HttpRequest, stripe_ids: list[str]):
    """The changelist action: a few inline, many as a background job with a progress page."""
    object_type = model_admin.object_type
    noun = model_admin.opts.verbose_name_plural
    if wait := limits.stripe_calls_wait(request.user):
        messages.error(request, limits.wait_text(wait))
        return None
    if len(stripe_ids) > resync.RESYNC_INLINE_LIMIT:
        try:
            job = resync.resync_job_start(
                actor=request.user, object_type=object_type, stripe_ids=stripe_ids
            )
        except resync.ResyncRefused as exc:
            messages.error(request, str(exc))
            return None
        url = display.admin_url("billing_resyncjob", job.pk)
        messages.info(
            request,
            f"Resyncing {job.total} {noun} in the background; follow its progress on the job's "
            "page.",
        )
        return HttpResponseRedirect(url)
    changed = unchanged = 0
    failures = []
    for stripe_id in stripe_ids:
        try:
            result = resync.object_resync(
                actor=request.user, object_type=object_type, stripe_id=stripe_id
            )
        except StripeAPIError as exc:
            failures.append(f"{stripe_id}: {stripe_error_text(exc)}")
            if exc.kind in ("authentication", "configuration"):
                break
            continue
        if result.changes:
            changed += 1
        else:
            unchanged += 1
    if changed + unchanged:
        messages.success(
            request,
            f"Resynced {changed + unchanged} {noun} from Stripe: {changed} changed, "
            f"{unchanged} already up to date.",
        )
    for failure in failures:
        messages.error(request, f"Resync failed for {failure}")
    return None


# --- Reprocess ------------------------------------------------------------------------------


class ReprocessView(ConsoleView):
    """Requeue the chosen events of the object's Event history."""

    required = [permissions.REPROCESS]

    def get(self, request, object_id):
        return self.back()

    def post(self, request, object_id):
        event_ids = request.POST.getlist("event")
        if not event_ids:
            messages.warning(request, "Choose the events to reprocess first.")
            return self.back()
        report_reprocess(
            request, reprocess.events_reprocess_selected(actor=request.user, event_ids=event_ids)
        )
        return self.back()


class FetchEventsView(ConsoleView):
    """The Event history's "Fetch missed events": the object's events Stripe still lists (its
    30-day window) that never reached us, stored and processed by the normal pipeline."""

    required = [permissions.RESYNC]

    def get(self, request, object_id):
        return self.back()

    def post(self, request, object_id):
        if refused := self.over_limit():
            return refused
        try:
            result = replay.object_events_fetch(
                actor=request.user, object_type=self.object_type, stripe_id=self.obj.id
            )
        except replay.ReplayError as exc:
            messages.error(request, exc.message)
        except StripeAPIError as exc:
            messages.error(request, f"Fetching events failed. {stripe_error_text(exc)}")
        else:
            messages.success(request, fetch_events_message(result))
        return self.back()


def fetch_events_message(result: replay.ReplayResult) -> str:
    if not result.listed:
        return "Stripe lists no events about this object in its 30-day window."
    if not result.stored:
        return f"No missed events: all {result.listed} that Stripe lists were received already."
    return (
        f"{result.stored} missed event{'s' if result.stored != 1 else ''} fetched and queued "
        f"for processing ({result.known} already received)."
    )


def report_reprocess(request: HttpRequest, outcomes: list[reprocess.Reprocessed]) -> None:
    for outcome in outcomes:
        level = messages.SUCCESS if outcome.requeued else messages.WARNING
        messages.add_message(request, level, f"Event {outcome.event_id}: {outcome.reason}")
