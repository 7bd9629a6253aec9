"""Keep secrets out of the logs, whatever a library decides to print.

Two layers, both on the one stdout handler (settings.LOGGING):
- ``RedactSecretsFilter`` rewrites the record itself (message, traceback text, stack), so any
  handler added later sees it redacted too;
- ``RedactingFormatter`` redacts the final formatted line, traceback included, as a backstop for
  anything a formatter adds (e.g. exception notes, chained exceptions).
"""

import logging

from config.sensitive import redacted as redact

_traceback_formatter = logging.Formatter()


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it, never raise here
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # What Formatter.format would print; it reuses exc_text once set.
            record.exc_text = _traceback_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class ForbiddenOneLineFilter(logging.Filter):
    """A 403 is an answer, not a fault: Django logs it with the PermissionDenied traceback
    (forty lines per refused page); keep its one line ("Forbidden (Permission denied): /…")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = record.exc_text = None
        return True


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def logging_config(*, level: str, stripe_level: str) -> dict:
    """settings.LOGGING: one format, to stdout, through both layers and the 403 filter."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "redact_secrets": {"()": "config.logging.RedactSecretsFilter"},
            "forbidden_one_line": {"()": "config.logging.ForbiddenOneLineFilter"},
        },
        "formatters": {
            "plain": {
                "()": "config.logging.RedactingFormatter",
                "format": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            },
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "plain",
                "filters": ["forbidden_one_line", "redact_secrets"],
            },
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            "django": {"handlers": ["stdout"], "level": level, "propagate": False},
            # stripe-python logs request lines at INFO; keep them at WARNING unless asked.
            "stripe": {"level": stripe_level},
        },
    }
