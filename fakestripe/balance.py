"""Balance transactions: one per successful charge, per refund (and failed refund), per
dispute withdrawal and reinstatement."""

from __future__ import annotations

from typing import Any

from . import objects
from .api import (
    Resource,
    register,
)


def record_balance(
    emu,
    oid: str,
    amount: int,
    currency: str,
    source: str,
    kind: str,
    description: str | None,
    **extra: Any,
) -> dict[str, Any]:
    """Store a balance transaction; `extra` passes a fee, its description, a reporting
    category (see `objects.balance_transaction`)."""
    txn = objects.balance_transaction(
        oid,
        emu.now(),
        amount=amount,
        currency=currency,
        source=source,
        kind=kind,
        description=description,
        **extra,
    )
    emu.store.put(txn)
    return txn


BALANCE_TRANSACTION = register(
    Resource(
        object="balance_transaction",
        path="balance_transactions",
        prefix="txn",
        noun="balance transaction",
        updatable=False,
        filters={
            "source": lambda o, v: o["source"] == v,
            "type": lambda o, v: o["type"] == v,
            "currency": lambda o, v: o["currency"] == v,
        },
        expandable=frozenset({"source"}),
    )
)
