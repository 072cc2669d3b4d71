"""Cleaning and duplicate detection.

Cleaning normalizes Unicode and whitespace and drops boilerplate lines (cookie banners,
"all rights reserved" footers, navigation crumbs) that repeat across a corpus and carry no
answer. Exact duplicates are caught by a hash of the normalized text; near duplicates by a
64-bit SimHash over word 3-grams (Charikar 2002), compared by Hamming distance.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_BOILERPLATE = re.compile(
    r"^\s*(?:(?:©|\(c\)|copyright)\b.*|.*all rights reserved\.?|.*(?:accept|use) (?:all )?cookies.*"
    r"|skip to (?:main )?content|back to top|table of contents)\s*$",
    re.IGNORECASE,
)
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANKS = re.compile(r"\n{3,}")
_WORD = re.compile(r"\w+")
NEAR_DUPLICATE_BITS = 10  # Hamming distance counted as near-duplicate; unrelated texts sit near 32


def clean_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    lines = [_SPACES.sub(" ", line).rstrip() for line in text.split("\n")]
    kept = [line for line in lines if not _BOILERPLATE.match(line)]
    return _BLANKS.sub("\n\n", "\n".join(kept)).strip()


def content_hash(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def normalized_hash(text: str) -> str:
    """Hash of the lower-cased words only: catches copies that differ in layout."""
    return content_hash(" ".join(_WORD.findall(text.lower())))


def simhash(text: str) -> int:
    words = _WORD.findall(text.lower())
    grams = [" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))]
    weights = [0] * 64
    for gram in grams:
        value = int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "big")
        for bit in range(64):
            weights[bit] += 1 if value >> bit & 1 else -1
    result = 0
    for bit, weight in enumerate(weights):
        if weight > 0:
            result |= 1 << bit
    return result - (1 << 63)  # signed, so it fits a BIGINT column


def hamming(a: int, b: int) -> int:
    return ((a + (1 << 63)) ^ (b + (1 << 63))).bit_count()


class Deduper:
    """Remembers what it has seen; says whether a new text is an exact or near duplicate."""

    def __init__(self) -> None:
        self._exact: dict[str, str] = {}
        self._near: list[tuple[int, str]] = []

    def add(
        self, source: str, text: str, exact: str | None = None, near: int | None = None
    ) -> None:
        self._exact.setdefault(exact or normalized_hash(text), source)
        self._near.append((simhash(text) if near is None else near, source))

    def duplicate_of(self, text: str) -> tuple[str, str] | None:
        """``(kind, source)`` of the earlier document this one duplicates, else None."""
        found = self._exact.get(normalized_hash(text))
        if found is not None:
            return "exact", found
        if len(_WORD.findall(text)) < 20:  # too short for SimHash to be meaningful
            return None
        value = simhash(text)
        for other, source in self._near:
            if hamming(value, other) <= NEAR_DUPLICATE_BITS:
                return "near", source
        return None
