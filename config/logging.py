"""Keep secrets out of the logs, whatever a library decides to print."""

import logging
import re

# Stripe secret and restricted keys (sk_live_, sk_test_ and any other sk_/rk_ form), webhook
# signing secrets, and client secrets. The one pattern: logs redact it, pages mask it
# (billing.display.mask_secrets), metadata refuses it (billing.metadata).
SECRET_PATTERN = re.compile(
    r"\b(sk|rk)_[0-9A-Za-z_]{6,}|\bwhsec_[0-9A-Za-z+/=_-]+|\b(pi|seti|cs)_[0-9A-Za-z_]+?_secret_[0-9A-Za-z]+"
)


def redact(text: str) -> str:
    return SECRET_PATTERN.sub("[redacted]", text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
