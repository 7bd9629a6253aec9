"""What must never be shown, logged or kept in metadata: one detector for every use.

Three kinds of thing:
- Stripe secrets: secret and restricted keys (``sk_live_…``, ``rk_test_…``), webhook signing
  secrets (``whsec_…``) and client secrets (``pi_…_secret_…``), in any case and glued to
  whatever precedes them (``xsk_live_…``, ``1whsec_…``);
- card numbers: 13 to 19 digits passing Luhn's check, however they are grouped (spaces,
  non-breaking spaces, dots, dashes, slashes, underscores, several in a row);
- values of keys named like a credential (``password``, ``p4ssword``, ``accessToken``,
  ``secrets``, ``Authorization``), whatever the value looks like.
Text is also checked in its NFKC form, so full-width or styled letters and digits are caught.

Logs redact (``config.logging``), pages mask (``billing.display``), metadata refuses
(``billing.metadata``), all through the functions here.
"""

from __future__ import annotations

import re
import unicodedata

_SECRET = re.compile(
    # Live and test keys and signing secrets: no word boundary, a prefix glued on is caught.
    r"(?:sk|rk)_(?:live|test)_[0-9a-z_]{4,}"
    r"|whsec_[0-9a-z+/=_-]{4,}"
    # Client secrets (pi_…_secret_…, seti_…, cs_…), glued or not.
    r"|(?:pi|seti|cs)_[0-9a-z_]+?_secret_[0-9a-z_]+"
    # Any other sk_/rk_ key, at a word start only ("risk_level" is not one).
    r"|\b(?:sk|rk)_[0-9a-z_]{6,}",
    re.IGNORECASE,
)
# A run of 13 to 19 digits with up to three separators between any two.
_DIGIT_RUN = re.compile(r"(?<!\d)\d(?:[\s._/\\-]{0,3}\d){12,18}(?!\d)")
_GROUP_SEPARATOR = re.compile(r"\D+")

# Key names, after normalising (see key_words): a word that is one of WORDS (or its plural),
# or a key whose letters, squashed together, end with one of ENDINGS.
_WORDS = frozenset({"pass", "pwd", "pin", "cvc", "cvv", "bearer", "otp"})
_ENDINGS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "accesskey",
    "credential",
    "authorization",
)
_LEET = str.maketrans({"4": "a", "@": "a", "3": "e", "1": "i", "!": "i", "0": "o", "5": "s",
                       "$": "s", "7": "t"})  # fmt: skip


def normal(text: str) -> str:
    """NFKC, so full-width and mathematical letters and digits read as what they look like."""
    return unicodedata.normalize("NFKC", text)


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every card number satisfies (``4242424242424242`` does)."""
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card_spans(text: str) -> list[tuple[int, int, str]]:
    spans = []
    for match in _DIGIT_RUN.finditer(text):
        groups = _GROUP_SEPARATOR.split(match.group())
        # Written cards group at most 6 digits (4-4-4-4, Amex 4-6-5) or none at all; a long
        # group after a separator is a decimal number ("0.0097284929999").
        if len(groups) > 1 and max(len(g) for g in groups) > 6:
            continue
        digits = "".join(groups)
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            spans.append((match.start(), match.end(), digits))
    return spans


def is_secret(text: str) -> bool:
    return bool(_SECRET.search(text) or (not text.isascii() and _SECRET.search(normal(text))))


def is_card_number(text: str) -> bool:
    return bool(_card_spans(text) or (not text.isascii() and _card_spans(normal(text))))


def is_sensitive(text: str) -> bool:
    """A secret or a card number anywhere in ``text``."""
    return is_secret(text) or is_card_number(text)


def key_words(key: str) -> list[str]:
    """``myAccessToken`` → ``["my", "access", "token"]``: NFKC, camelCase split, casefolded,
    digits and symbols read as the letters they stand in for (``p4$$word`` → ``password``)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", normal(key))
    return [w for w in re.split(r"[^a-z]+", spaced.casefold().translate(_LEET)) if w]


def is_sensitive_key(key: str) -> bool:
    """A key named like a credential: its value is hidden wherever it appears."""
    words = key_words(key)
    if any(w in _WORDS or (w.endswith("s") and w[:-1] in _WORDS) for w in words):
        return True
    squashed = "".join(words).removesuffix("s")
    return squashed.endswith(_ENDINGS)


def mask_secret(secret: str) -> str:
    """``sk_test_51Hx…4f2a`` → ``sk_test_…4f2a``: the kind of secret and its last 4, no more."""
    tail = secret[-4:] if len(secret) >= 12 else ""
    kind = re.match(r"(?i)^.*?((?:sk|rk)_(?:live_|test_)?|whsec_|(?:pi|seti|cs)_)", secret)
    return f"{kind.group(1) if kind else ''}…{tail}"


def mask_card(digits: str) -> str:
    """``4242 4242 4242 4242`` → ``•••• 4242``."""
    return f"•••• {digits[-4:]}"


def masked(text: str) -> str:
    """``text`` with every secret and card number masked where it stands.

    When only the NFKC form shows one (styled or full-width characters), the whole text is
    hidden: its positions do not map back one to one.
    """
    for start, end, digits in reversed(_card_spans(text)):
        text = f"{text[:start]}{mask_card(digits)}{text[end:]}"
    text = _SECRET.sub(lambda m: mask_secret(m.group()), text)
    if is_sensitive(text):
        return "(hidden)"
    return text


def redacted(text: str) -> str:
    """For logs: every secret and card number replaced by ``[redacted]``."""
    text = _SECRET.sub("[redacted]", text)
    for start, end, _ in reversed(_card_spans(text)):
        text = f"{text[:start]}[redacted]{text[end:]}"
    if is_sensitive(text):
        return "[redacted]"
    return text
