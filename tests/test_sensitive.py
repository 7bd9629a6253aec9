"""The one detector of what must never be shown, logged or kept in metadata: the spellings a
prober used to slip secrets and card numbers past the old checks, and what must stay visible."""

from __future__ import annotations

import pytest

from billing import metadata
from billing.display import hidden, pretty_json
from config import sensitive

CARD = "4242424242424242"


@pytest.mark.parametrize(
    "text",
    [
        "4242.4242.4242.4242",
        "4242/4242/4242/4242",
        "4242  4242  4242  4242",
        "4242\u00a04242\u00a04242\u00a04242",
        "4242-4242_4242 4242",
        "card: 4242424242424242 exp 12/30",
        "３７８２ ８２２４６３ １０００５",  # full-width digits (Amex test card)  # noqa: RUF001
    ],
)
def test_card_numbers_in_any_grouping(text):
    assert sensitive.is_card_number(text)
    assert metadata.value_errors(text)
    shown = sensitive.masked(text)
    assert "4242 4242" not in shown and "4242.4242" not in shown
    assert "•••• " in shown or shown == "(hidden)"


@pytest.mark.parametrize(
    "text",
    [
        "SK_LIVE_51Habcdefghijklmnop",
        "Sk_Test_51Habcdefghijklmnop",
        "xsk_live_51Habcdefghijklmnop",
        "1whsec_abcdefghijklmnop",
        "WHSEC_abcdefghijklmnop",
        "rk_live_abcdefghijkl",
        "pi_3Mtw_secret_abcdefgh",
        "cs_test_a1_secret_b2",
        "ｓｋ＿ｌｉｖｅ＿51Habcdefghijklmnop",  # noqa: RUF001
    ],
)
def test_secrets_in_any_case_or_glued(text):
    assert sensitive.is_secret(text)
    assert metadata.value_errors(text)
    assert "abcdefgh" not in sensitive.masked(text)
    assert "abcdefgh" not in sensitive.redacted(text)


@pytest.mark.parametrize(
    "key",
    ["password", "secrets", "accesstoken", "accessToken", "p4ssword", "P@$$word", "authorization",
     "Authorization", "api_key", "apiKey", "client_secret", "refresh_tokens", "cvv", "pin"],
)  # fmt: skip
def test_credential_key_names(key):
    assert sensitive.is_sensitive_key(key)
    assert metadata.key_errors(key)


@pytest.mark.parametrize(
    "text",
    [
        "0.0097284929999",  # a duration in a log line
        "1700000000",  # a timestamp
        "+44 20 7946 0958",
        "4242424242424241",  # fails Luhn
        "risk_level",
        "ord_0a1b2c3d",
        "2026-12-07 04:41:09,278",
    ],
)
def test_ordinary_values_stay_visible(text):
    assert not sensitive.is_sensitive(text)
    assert sensitive.masked(text) == text
    assert sensitive.redacted(text) == text


@pytest.mark.parametrize(
    "key", ["passenger_count", "tokenized_at", "bypass", "shipping", "order_id", "three_d_secure"]
)
def test_ordinary_key_names(key):
    assert not sensitive.is_sensitive_key(key)


def test_structures_hide_credentials_values_and_mask_the_rest():
    data = {
        "metadata": {"password": "hunter2", "note": f"card {CARD}", CARD: "key is a card"},
        "client_secret": "pi_1_secret_abc",
        "amount": 4242424242424242,
        "created": 1700000000,
    }
    text = pretty_json(data)
    for leaked in ("hunter2", CARD, "secret_abc"):
        assert leaked not in text
    shown = hidden(data)
    assert shown["metadata"]["password"] == "(hidden)"
    assert shown["client_secret"] == "(hidden)"
    assert shown["created"] == 1700000000
    assert "•••• 4242" in shown["metadata"]["note"]
