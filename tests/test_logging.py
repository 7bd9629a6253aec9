import logging

from config.logging import RedactSecretsFilter


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
