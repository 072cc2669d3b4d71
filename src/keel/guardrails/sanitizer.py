"""The guardrails' PII scanner as a text sanitizer, for retrieval's ingestion.

Same detectors as the ``pii`` input scanner (Presidio pattern recognizers offline,
phonenumbers, card and IBAN checksums); each finding is replaced by ``[ENTITY]``, which is
deterministic, so content hashes stay stable across re-ingests.
"""

from __future__ import annotations

import threading
from typing import Any

from keel.guardrails.actions import redact
from keel.guardrails.pii import PiiScanner, build_pii


class PiiSanitizer:
    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self._options = dict(options or {})
        self._scanner: PiiScanner | None = None
        self._lock = threading.Lock()

    def _built(self) -> PiiScanner:
        with self._lock:  # building loads Presidio's recognizers: once, on first use
            if self._scanner is None:
                self._scanner = build_pii(self._options)
            return self._scanner

    def sanitize(self, text: str) -> str:
        return redact(text, self._built().find(text))

    def scrub(self, text: str) -> tuple[str, tuple[str, ...]]:
        """The redacted text and the entity types that were found in it."""
        findings = self._built().find(text)
        return redact(text, findings), tuple(f.entity for f in findings)
