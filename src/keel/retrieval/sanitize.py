"""PII sanitizing before text is indexed: a pluggable interface and a built-in regex sanitizer.

The guardrails feature ships a real PII scanner; anything with a ``sanitize(text) -> str``
method plugs in here. The built-in one masks the patterns regexes catch reliably (emails,
IBANs, card-like and SSN-like numbers, IP addresses, phone numbers in common layouts).
"""

from __future__ import annotations

import re
from typing import Protocol


class Sanitizer(Protocol):
    def sanitize(self, text: str) -> str: ...


_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("EMAIL", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")),
    ("CARD", re.compile(r"\b(?:\d[ -]?){13,16}\b")),
    ("SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("IP", re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")),
    ("PHONE", re.compile(r"(?<![\w-])\+?\d{1,3}?[ .-]?\(?\d{2,4}\)?[ .-]\d{3,4}[ .-]\d{3,4}\b")),
)


class RegexSanitizer:
    """Replaces each match with ``[KIND]``; deterministic, so content hashes stay stable."""

    def sanitize(self, text: str) -> str:
        for kind, pattern in _PATTERNS:
            text = pattern.sub(f"[{kind}]", text)
        return text
