"""The console's Refund page: a form (which payment, in full, by amount or by line, Stripe's
reason and a note), then a confirmation stating what the customer gets back and in which
currency, then the refund (or, above what this person may refund, a request for a Billing
admin's approval). Thin: the rules are ``orders.services.refund_console``'s.

A form's one-time token is made when the form is first shown and travels with it to the
confirmation: submitting the confirmation twice (a double click, the browser's back button and
submit again, a retried POST) makes one refund.
"""

from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.views.generic import FormView

from billing.admin.views import stripe_error_text
from billing.console import limits
from billing.display import admin_url
from billing.money import format_amount, minor_unit_exponent
from billing.stripe_api import StripeAPIError
from orders.models import Order, OrderRefund
from orders.services import refund_console, refund_targets

HOW = (("full", "In full (what is left)"), ("amount", "An amount"), ("lines", "By line"))
REASONS = [
    ("requested_by_customer", "Requested by the customer"),
    ("duplicate", "Duplicate payment"),
    ("fraudulent", "Fraudulent"),
    ("", "Other (say why in the note)"),
]


class RefundForm(forms.Form):
    payment = forms.TypedChoiceField(coerce=int, label="Payment to refund")
    how = forms.ChoiceField(choices=HOW, widget=forms.RadioSelect, initial="full")
    amount = forms.DecimalField(required=False, min_value=0, label="Amount", decimal_places=2)
    reason = forms.ChoiceField(choices=REASONS, required=False, initial="requested_by_customer")
    note = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="For the order's history and the audit log; not sent to the customer.",
    )
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, order: Order, targets, **kwargs):
        super().__init__(*args, **kwargs)
        self.order = order
        self.fields["payment"].choices = [(t.payment.pk, t.label) for t in targets]
        self.items = list(order.items.all())
        for item in self.items:
            self.fields[f"line_{item.pk}"] = forms.IntegerField(
                required=False,
                min_value=0,
                max_value=item.quantity,
                label=f"{item.description} ({format_amount(item.unit_amount, order.currency)} "
                f"each, {item.quantity} ordered)",
            )

    def line_fields(self):
        return [self[f"line_{item.pk}"] for item in self.items]

    def minor_amount(self) -> int | None:
        """The amount in the currency's minor unit (``12.50`` USD is 1250, ``500`` JPY 500)."""
        value = self.cleaned_data.get("amount")
        if value is None:
            return None
        exponent = minor_unit_exponent(self.order.currency)
        try:
            scaled = Decimal(value).scaleb(exponent)
        except InvalidOperation:
            return None
        if scaled != scaled.to_integral_value():
            raise forms.ValidationError(
                f"{self.order.currency.upper()} amounts have {exponent} decimal places."
            )
        return int(scaled)

    def clean(self):
        data = super().clean()
        how = data.get("how")
        if how == "amount" and data.get("amount") in (None, ""):
            self.add_error("amount", "Enter the amount to refund.")
        if how == "lines" and not self.lines():
            raise forms.ValidationError("Enter the quantity to refund of at least one line.")
        if how == "amount":
            try:
                data["minor"] = self.minor_amount()
            except forms.ValidationError as error:
                self.add_error("amount", error)
        return data

    def lines(self) -> dict[int, int]:
        return {
            item.pk: self.cleaned_data.get(f"line_{item.pk}")
            for item in self.items
            if self.cleaned_data.get(f"line_{item.pk}")
        }


class RefundView(FormView):
    """``/admin/orders/orderrefund/refund/<order public id>/`` (``?payment=<pk>`` chooses the
    payment: the charge page's Refund). GET: the form; POST: the confirmation; POST with
    ``confirm``: the refund or the request. 403 without a refund permission."""

    model_admin = None
    form_class = RefundForm
    template_name = "admin/orders/orderrefund/refund_form.html"

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.order = Order.objects.filter(public_id=kwargs["public_id"]).first()

    def dispatch(self, request, *args, **kwargs):
        if not refund_console.may_refund(request.user):
            raise PermissionDenied
        if self.order is None:
            raise Http404("No such order.")
        self.targets = refund_targets.targets_for(order=self.order)
        return super().dispatch(request, *args, **kwargs)

    def get_initial(self):
        chosen = self.request.GET.get("payment", "")
        refundable = [t for t in self.targets if t.remaining > 0]
        first = refundable[0].payment.pk if refundable else None
        return {
            "token": secrets.token_urlsafe(24),
            "payment": int(chosen) if chosen.isdigit() else first,
        }

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "order": self.order, "targets": self.targets}

    def get_context_data(self, **kwargs):
        user = self.request.user
        limit = refund_console.threshold(self.order.currency)
        return {
            **self.model_admin.admin_site.each_context(self.request),
            **super().get_context_data(**kwargs),
            "opts": self.model_admin.opts,
            "order": self.order,
            "order_url": admin_url("orders_order", self.order.public_id),
            "targets": self.targets,
            "title": f"Refund order {self.order.number}",
            "may_refund_any": user.has_perm(refund_console.REFUND),
            "limit": format_amount(limit, self.order.currency) if limit is not None else None,
            **kwargs,
        }

    def form_valid(self, form):
        data = form.cleaned_data
        how = data["how"]
        asked = {
            "order": self.order,
            "payment_id": data["payment"],
            "amount": data.get("minor") if how == "amount" else None,
            "lines": form.lines() if how == "lines" else {},
            "reason": data.get("reason") or "",
            "note": (data.get("note") or "").strip(),
        }
        if "confirm" in self.request.POST:
            done = self.order.refunds.filter(request_token=data["token"]).first()
            if done is not None and done.status != OrderRefund.Status.SENDING:
                # Submitted twice: the first submit made it.
                messages.info(self.request, _done_text(done))
                return HttpResponseRedirect(admin_url("orders_order", self.order.public_id))
            if done is not None:
                # Stripe's answer never came: the same request again (the same key).
                return self._refund(form, asked, plan=None)
        try:
            plan = refund_console.refund_plan(**asked)
        except refund_console.RefundRefused as refused:
            form.add_error(None, refused.message)
            return self.form_invalid(form)
        if "confirm" not in self.request.POST:
            return self._confirmation(form, plan)
        return self._refund(form, asked, plan)

    def _confirmation(self, form, plan) -> TemplateResponse:
        approval = refund_console.needs_approval(self.request.user, plan.amount, plan.currency)
        return TemplateResponse(
            self.request,
            "admin/orders/orderrefund/refund_confirm.html",
            self.get_context_data(form=form, plan=plan, needs_approval=approval),
        )

    def _refund(self, form, asked, plan):
        request = self.request
        ask = request.POST.get("intent") == "request"
        back = HttpResponseRedirect(admin_url("orders_order", self.order.public_id))
        if not ask and (wait := limits.stripe_calls_wait(request.user)):
            messages.error(request, limits.wait_text(wait))
            return self._confirmation(form, plan) if plan else back
        try:
            row = refund_console.order_refund(
                actor=request.user,
                request_token=form.cleaned_data["token"],
                ask=ask,
                **asked,
            )
        except refund_console.RefundRefused as refused:
            form.add_error(None, refused.message)
            return self.form_invalid(form)
        except StripeAPIError as exc:
            messages.error(
                request,
                (
                    "Stripe did not answer, so the refund may not have been made yet. Submit "
                    "again: the same request never refunds twice. "
                    if exc.retryable
                    else "Stripe refused the refund; nothing was refunded. "
                )
                + stripe_error_text(exc),
            )
            return self._confirmation(form, plan) if plan else back
        messages.success(request, _done_text(row))
        return back


def _done_text(row: OrderRefund) -> str:
    money = format_amount(row.amount, row.currency)
    if row.status == OrderRefund.Status.REQUESTED:
        return f"Refund of {money} requested: a Billing admin must approve it before it is made."
    if row.status == OrderRefund.Status.SENDING:
        return f"The refund of {money} is being sent to Stripe (submitted twice?)."
    return f"Refunded {money} ({row.refund_id}): {row.get_status_display()}."
