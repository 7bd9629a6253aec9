"""Amounts for people: integer minor units (as Stripe sends them) to a currency string."""

from __future__ import annotations

from decimal import Decimal

from djstripe.settings import djstripe_settings

# Stripe also treats these as zero-decimal in amounts it accepts; dj-stripe's list lacks UGX.
ZERO_DECIMAL_CURRENCIES = frozenset(djstripe_settings.ZERO_DECIMAL_CURRENCIES) | {"ugx"}
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cny": "¥", "inr": "₹", "krw": "₩"}


def minor_unit_exponent(currency: str) -> int:
    return 0 if currency.lower() in ZERO_DECIMAL_CURRENCIES else 2


def format_amount(amount: int | None, currency: str | None) -> str:
    """``1999, "usd"`` → ``$19.99``; ``500, "jpy"`` → ``¥500``; unknown symbol → ``19.99 CHF``."""
    if amount is None or not currency:
        return ""
    currency = currency.lower()
    exponent = minor_unit_exponent(currency)
    value = Decimal(int(amount)).scaleb(-exponent)
    number = f"{value:,.{exponent}f}"
    symbol = SYMBOLS.get(currency)
    if symbol:
        return f"-{symbol}{number[1:]}" if number.startswith("-") else f"{symbol}{number}"
    return f"{number} {currency.upper()}"
