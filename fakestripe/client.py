"""A small HTTP client for the emulator's control endpoints (used by the pytest plugin)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any
from urllib.parse import urlencode


class FakeStripeClient:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _request(
        self, method: str, path: str, payload: dict | None = None, query: dict | None = None
    ) -> Any:
        target = self.url + path + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(target, data=data, method=method)  # noqa: S310
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=130) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            body = error.read()
            try:
                error.payload = json.loads(body)
            except ValueError:
                error.payload = body
            raise

    def reset(self) -> None:
        self._request("POST", "/_fake/reset", {})

    def complete_checkout(self, session_id: str, card: str = "4242424242424242", **extra) -> dict:
        return self._request(
            "POST", f"/_fake/checkout/sessions/{session_id}/complete", {"card": card, **extra}
        )

    def complete_checkout_bank(
        self, session_id: str, bank_account: str = "000123456789", settle_after: float = 2, **extra
    ) -> dict:
        """Pay by ACH Direct Debit: the session completes unpaid; the debit settles later."""
        payload = {"payment_method": "us_bank_account", "bank_account": bank_account}
        return self._request(
            "POST",
            f"/_fake/checkout/sessions/{session_id}/complete",
            {**payload, "settle_after": settle_after, **extra},
        )

    def settle_payment(self, payment_intent_id: str) -> dict:
        """Settle a processing bank debit now (success or failure, as its account says)."""
        return self._request("POST", f"/_fake/payment_intents/{payment_intent_id}/settle", {})

    def set_faults(self, **faults: Any) -> dict:
        return self._request("POST", "/_fake/faults", faults)

    def clear_faults(self) -> dict:
        return self._request("DELETE", "/_fake/faults")

    def faults(self) -> dict:
        return self._request("GET", "/_fake/faults")

    def stats(self) -> dict:
        return self._request("GET", "/_fake/stats")

    def reset_stats(self) -> dict:
        return self._request("POST", "/_fake/stats/reset", {})

    def deliveries(self, event: str | None = None, endpoint: str | None = None) -> list[dict]:
        query = {k: v for k, v in {"event": event, "endpoint": endpoint}.items() if v}
        return self._request("GET", "/_fake/deliveries", query=query or None)["data"]

    def wait_deliveries(self, timeout: float = 5.0) -> bool:
        """True once no webhook delivery is queued or in flight."""
        return self._request("GET", "/_fake/deliveries/wait", query={"timeout": timeout})["idle"]

    def resend(self, event_id: str, endpoint: str | None = None) -> dict:
        payload = {"endpoint": endpoint} if endpoint else {}
        return self._request("POST", f"/_fake/events/{event_id}/resend", payload)

    def renew_subscription(self, subscription_id: str) -> dict:
        return self._request("POST", f"/_fake/subscriptions/{subscription_id}/renew", {})

    def seed(self, customers: int, **params: Any) -> dict:
        """A paid history (see /_fake/bulk/seed): objects created, by type."""
        return self._request("POST", "/_fake/bulk/seed", {"customers": customers, **params})

    def counts(self) -> dict[str, int]:
        """Listed objects by type: what a complete mirror holds."""
        return self._request("GET", "/_fake/objects/counts")

    def age_events(self, days: int) -> dict:
        """Every stored event ``days`` older (Stripe lists the last 30 days only)."""
        return self._request("POST", "/_fake/events/age", {"days": days})

    # -- refunds and disputes ------------------------------------------------------------

    def fail_refund(self, refund_id: str, failure_reason: str | None = None) -> dict:
        """The issuer returns a pending or succeeded refund (`refund.failed`)."""
        payload = {"failure_reason": failure_reason} if failure_reason else {}
        return self._request("POST", f"/_fake/refunds/{refund_id}/fail", payload)

    def succeed_refund(self, refund_id: str) -> dict:
        """A pending refund succeeds now (`refund.updated`)."""
        return self._request("POST", f"/_fake/refunds/{refund_id}/succeed", {})

    def scheduled(self) -> list[dict]:
        """Work waiting for its time: asynchronous refunds, dispute decisions."""
        return self._request("GET", "/_fake/scheduled")["data"]

    def run_scheduled(self, object_id: str | None = None) -> list[dict]:
        """Run scheduled work now (all of it, or one object's); answers what ran."""
        payload = {"id": object_id} if object_id else {}
        return self._request("POST", "/_fake/scheduled/run", payload)["ran"]

    def dispute_charge(
        self,
        charge_id: str,
        reason: str | None = None,
        amount: int | None = None,
        inquiry: bool = False,
    ) -> dict:
        """Open a dispute (a chargeback, or an inquiry) on a succeeded charge."""
        payload: dict[str, Any] = {"inquiry": inquiry}
        if reason:
            payload["reason"] = reason
        if amount is not None:
            payload["amount"] = amount
        return self._request("POST", f"/_fake/charges/{charge_id}/dispute", payload)

    def submit_dispute(self, dispute_id: str) -> dict:
        """As if evidence had been submitted: the dispute goes under review."""
        return self._request("POST", f"/_fake/disputes/{dispute_id}/submit", {})

    def escalate_dispute(self, dispute_id: str) -> dict:
        """The issuer turns an inquiry into a chargeback."""
        return self._request("POST", f"/_fake/disputes/{dispute_id}/escalate", {})

    def close_dispute(self, dispute_id: str, status: str) -> dict:
        """The bank decides: `won`/`lost` (chargeback) or `warning_closed` (inquiry)."""
        return self._request("POST", f"/_fake/disputes/{dispute_id}/close", {"status": status})
