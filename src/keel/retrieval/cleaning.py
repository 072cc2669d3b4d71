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

import numpy as np

_BOILERPLATE = re.compile(
    r"^\s*(?:(?:©|\(c\)|copyright)\b.*|.*all rights reserved\.?|.*(?:accept|use) (?:all )?cookies.*"
    r"|skip to (?:main )?content|back to top|table of contents)\s*$",
    re.IGNORECASE,
)
# control and format characters (zero-width spaces, BOMs, bidi marks), tab and newline kept
_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]"
)
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANKS = re.compile(r"\n{3,}")
_WORD = re.compile(r"\w+")
NEAR_DUPLICATE_BITS = 10  # Hamming distance counted as near-duplicate; unrelated texts sit near 32


def clean_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
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
    """64-bit SimHash of the word 3-grams, as a signed integer (fits a BIGINT column)."""
    words = _WORD.findall(text.lower())
    grams = [" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))]
    digests = b"".join(hashlib.blake2b(g.encode(), digest_size=8).digest() for g in grams)
    bits = np.unpackbits(np.frombuffer(digests, dtype=np.uint8).reshape(len(grams), 8), axis=1)
    weights = bits.sum(axis=0, dtype=np.int64) * 2 - len(grams)  # +1 per set bit, -1 per clear
    packed = np.packbits(weights > 0).tobytes()
    return int.from_bytes(packed, "big", signed=True)


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & 0xFFFFFFFFFFFFFFFF).bit_count()


class Deduper:
    """Remembers what it has seen; says whether a new text is an exact or near duplicate.

    Near-duplicate lookup compares a SimHash against every one seen so far in one vectorized
    XOR + popcount, about 0.1 ms per 100,000 documents.
    """

    def __init__(self) -> None:
        self._exact: dict[str, str] = {}
        self._hashes = np.zeros(1024, dtype=np.int64)
        self._sources: list[str] = []

    def add(
        self, source: str, text: str, exact: str | None = None, near: int | None = None
    ) -> None:
        self._exact.setdefault(exact or normalized_hash(text), source)
        if len(self._sources) == len(self._hashes):
            self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
        self._hashes[len(self._sources)] = simhash(text) if near is None else near
        self._sources.append(source)

    def duplicate_of(
        self, text: str, exact: str | None = None, near: int | None = None
    ) -> tuple[str, str] | None:
        """``(kind, source)`` of the earlier document this one duplicates, else None."""
        found = self._exact.get(exact or normalized_hash(text))
        if found is not None:
            return "exact", found
        if len(_WORD.findall(text)) < 20 or not self._sources:  # too short for SimHash
            return None
        value = simhash(text) if near is None else near
        seen = self._hashes[: len(self._sources)]
        distances = np.bitwise_count(np.bitwise_xor(seen, np.int64(value)))
        best = int(np.argmin(distances))
        if int(distances[best]) <= NEAR_DUPLICATE_BITS:
            return "near", self._sources[best]
        return None
