"""Undo the tricks that hide an attack from a pattern: unicode games and layered encodings.

``views(text)`` returns the text as written, its normalized form, and every decoding that
looks like real text (base64, hex, rot13, URL/percent, HTML entities, unicode escapes),
recursively up to a small depth, so scanners look at what the model would understand.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import html
import re
import unicodedata
import urllib.parse

# Zero-width, joiners, word joiner, BOM, soft hyphen, invisible separators.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_TAGS = re.compile("[\U000e0000-\U000e007f]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # ESC too, once sequences are gone

# Cyrillic / Greek / other letters that render like Latin ones (after NFKC).
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i",
        "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w",
        "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
        "С": "C", "Т": "T", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S", "Υ": "Y", "Ζ": "Z",
        "α": "a", "ο": "o", "ρ": "p", "ν": "v", "τ": "t", "ι": "i", "κ": "k", "ε": "e",
        "Α": "A", "Β": "B", "Ε": "E", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
        "Ο": "O", "Ρ": "P", "Τ": "T", "Χ": "X", "ı": "i", "ℓ": "l",
        # Typographic quotes and apostrophes, which NFKC keeps: U+2019 becomes an apostrophe.
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u02bc": "'", "\u201c": '"', "\u201d": '"',
        "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    }
)  # fmt: skip
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)

_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4}){4,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_B64URL = re.compile(r"(?:[A-Za-z0-9_-]{4}){4,}[A-Za-z0-9_-]{0,3}={0,2}")
_HEX = re.compile(r"(?:(?:0x)?[0-9a-fA-F]{2}[\s:,]?){8,}")
_LONG_RUN = re.compile(r"[A-Za-z0-9+/_=-]{16,}")
# Hex-encoded ASCII: every byte's first digit is 2-7, which English words rarely start with.
_HEX_RUN = re.compile(r"[0-9a-fA-F]{16}")
_HEX_PAIRS = re.compile(r"[2-7][0-9a-fA-F](?:[\s:,](?:0x)?[2-7][0-9a-fA-F]){6}")
_PERCENT = re.compile(r"%[0-9a-fA-F]{2}")
_UNICODE_ESC = re.compile(r"(?:\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}){3,}")
_ENTITY = re.compile(r"&#?[A-Za-z0-9]+;")
_BOUNDARY = re.compile(r"(?<=[.!?:;])\s+|\n+")
SEGMENT_CHARS = 80  # a segment is one or more whole sentences, at least this long
MAX_SEGMENTS = 48  # longer texts get longer segments, so the whole text is always covered
_MAX_DEPTH = 3
_MAX_VIEWS = 24


def strip_hidden(text: str) -> str:
    """Remove ANSI escapes, control, zero-width, bidi and tag characters."""
    if text.isascii():  # zero-width, bidi and tag characters are all outside ASCII
        return _CONTROL.sub("", _ANSI.sub("", text)) if _has_control(text) else text
    text = _ANSI.sub("", text)
    text = _TAGS.sub("", text)
    text = _BIDI.sub("", text)
    text = _INVISIBLE.sub("", text)
    return _CONTROL.sub("", text)


def _has_control(text: str) -> bool:
    return not text.isprintable() and _CONTROL.search(text) is not None


def tag_payload(text: str) -> str:
    """Text smuggled in Unicode tag characters (U+E0020..E007E map to ASCII)."""
    if text.isascii() or not _TAGS.search(text):
        return ""
    return "".join(chr(ord(c) - 0xE0000) for c in text if 0xE0020 <= ord(c) <= 0xE007E)


def normalize(text: str) -> str:
    """NFKC, hidden characters removed, homoglyphs and typographic quotes folded, whitespace
    collapsed, lowercased."""
    text = strip_hidden(text)
    if not text.isascii():  # NFKC and homoglyphs change nothing in ASCII
        text = unicodedata.normalize("NFKC", text).translate(_HOMOGLYPHS)
    return " ".join(text.split()).lower()


_SPACED = re.compile(r" \S \S \S \S \S ")  # starts with a literal: scanned fast


def despace(text: str) -> str:
    """``I g n o r e   a l l`` -> ``Ignore all``: single characters spaced out."""
    return re.sub(r" {2,}", "\0", text).replace(" ", "").replace("\0", " ")


def deleet(text: str) -> str:
    return text.translate(_LEET)


def _printable(candidate: str) -> bool:
    if len(candidate) < 6:
        return False
    good = sum(c.isprintable() or c in "\n\t" for c in candidate)
    letters = sum(c.isalpha() or c == " " for c in candidate)
    return good / len(candidate) > 0.95 and letters / len(candidate) > 0.6


def _decode_bytes(raw: bytes) -> str | None:
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return decoded if _printable(decoded) else None


def _b64(chunk: str) -> str | None:
    padded = chunk + "=" * (-len(chunk) % 4)
    for decoder in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            found = _decode_bytes(decoder(padded))
        except (binascii.Error, ValueError):
            continue
        if found:
            return found
    return None


def _hex(chunk: str) -> str | None:
    digits = re.sub(r"0x|[\s:,]", "", chunk)
    if len(digits) % 2:
        digits = digits[:-1]
    try:
        return _decode_bytes(bytes.fromhex(digits))
    except ValueError:
        return None


def decodings(text: str) -> list[str]:
    """Every one-step decoding of ``text`` (or its encoded runs) that reads as text."""
    found: list[str] = []
    runs = _LONG_RUN.findall(text)  # one cheap pass; the encodings need a long unbroken run
    candidates = []
    if any((len(r) >= 16 and not r.isalpha()) or len(r) >= 24 for r in runs):
        candidates += [(_B64, _b64), (_B64URL, _b64)]
    if _HEX_RUN.search(text) or _HEX_PAIRS.search(text):
        candidates.append((_HEX, _hex))
    for pattern, decoder in candidates:
        for match in pattern.finditer(text):
            decoded = decoder(match.group())
            if decoded:
                found.append(decoded)
    if len(_PERCENT.findall(text)) >= 3:
        found.append(urllib.parse.unquote_plus(text))
    if _ENTITY.search(text):
        found.append(html.unescape(text))
    if ("\\u" in text or "\\x" in text) and _UNICODE_ESC.search(text):
        with contextlib.suppress(UnicodeDecodeError):
            found.append(codecs.decode(text, "unicode_escape"))
    if _SPACED.search(text):
        found.append(despace(text))
    payload = tag_payload(text)
    if payload:
        found.append(payload)
    if not reads_as_english(text):  # rot13 and reversal undo noise into English, or nothing
        found += [d for d in (codecs.encode(text, "rot13"), text[::-1]) if reads_as_english(d)]
    return found


_COMMON_WORDS = (
    "the and to of a is you in it for that on with this i be are your my me what how can "
    "do not we have please will at as from or an if was all so"
)
_COMMON = frozenset(_COMMON_WORDS.split())
_WORD = re.compile(r"[a-z']+")


def reads_as_english(text: str) -> bool:
    """At least one word in seven is a very common English word."""
    words = _WORD.findall(text[:1500].lower())
    return len(words) >= 4 and sum(w in _COMMON for w in words) / len(words) >= 0.14


def views(text: str) -> list[str]:
    """The text, normalized, and its decodings (recursively), each normalized, deduplicated."""
    seen: dict[str, None] = {}
    frontier = [text]
    for depth in range(_MAX_DEPTH + 1):
        following: list[str] = []
        for item in frontier:
            norm = normalize(item)
            if norm in seen or len(seen) >= _MAX_VIEWS:
                continue
            seen[norm] = None
            if depth < _MAX_DEPTH:
                following.extend(decodings(item))
        frontier = following
    return list(seen)


def segments(text: str) -> list[tuple[int, int]]:
    """Spans of consecutive whole sentences (or lines) of ``text``, each at least
    ``SEGMENT_CHARS`` long (longer for long texts, at most ``MAX_SEGMENTS`` of them); empty when
    the text is a single segment. An instruction buried in a document is scored on its own."""
    size = max(SEGMENT_CHARS, len(text) // MAX_SEGMENTS + 1)
    if len(text) < 2 * size:
        return []
    spans, start = [], 0
    for boundary in _BOUNDARY.finditer(text):
        if boundary.start() - start >= size:
            spans.append((start, boundary.start()))
            start = boundary.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans if len(spans) > 1 else []
