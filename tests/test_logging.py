import logging

import pytest

from config.logging import RedactSecretsFilter

KEY = "sk_live_abc123XYZ0000"
WEBHOOK_SECRET = "whsec_Zm9v-bar_baz+q/0="


def test_secrets_are_redacted_from_log_records():
    record = logging.LogRecord(
        "stripe",
        logging.INFO,
        __file__,
        1,
        "key=%s secret=%s",
        ("sk_live_abc123XYZ", "whsec_Zm9v"),
        None,
    )

    RedactSecretsFilter().filter(record)

    assert record.getMessage() == "key=[redacted] secret=[redacted]"


def _fail_with_secrets():
    try:
        raise KeyError(f"the signing secret was {WEBHOOK_SECRET}")
    except KeyError as exc:
        raise RuntimeError(f"Stripe refused {KEY}") from exc


def test_tracebacks_are_redacted_in_the_output(log_output):
    # when code logs an exception whose message (and its cause's) carries secrets
    logger = logging.getLogger("billing.anything")
    try:
        _fail_with_secrets()
    except RuntimeError:
        logger.exception("processing failed for %s", KEY)
    logger.error("no exception here", stack_info=True)

    # then the written output has the traceback, and no secret in it
    output = log_output.getvalue()
    assert "Traceback (most recent call last)" in output
    assert "The above exception was the direct cause" in output
    assert "RuntimeError: Stripe refused [redacted]" in output
    assert "KeyError: 'the signing secret was [redacted]'" in output
    assert "processing failed for [redacted]" in output
    assert KEY not in output and "whsec_" not in output and "sk_live_" not in output


@pytest.mark.parametrize(
    "text",
    [
        "sk_test_shoptests0000000000000000",
        "rk_live_51Habc",
        "whsec_abc-def_ghi",
        "pi_3Nabc_secret_XYZ123",
        "cs_test_a1_secret_b2",
    ],
)
def test_each_kind_of_secret_is_redacted_whole(text, log_output):
    logging.getLogger("billing.anything").warning("value: %s.", text)
    assert log_output.getvalue().rstrip().endswith("value: [redacted].")
