"""Celery tasks of the Stripe boundary. Tasks are thin: they call one service and report."""

from celery import shared_task


@shared_task(name="billing.echo")
def echo(value: str) -> str:
    """Round-trip probe used to prove a worker consumes from the broker."""
    return value
