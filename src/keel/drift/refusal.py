"""Is a model answer a refusal? The guardrails' refusal scanner decides, so drift monitoring
and the ``refusal`` output guardrail agree on what a refusal is.

The scanner reads only the answer's opening (where refusals are phrased) after Unicode
normalization. Its phrasings are English; the rate is compared between windows, so a
consistent miss on other languages shows up as a stable rate rather than as drift.
"""

from __future__ import annotations

from keel.guardrails.output import RefusalScanner
from keel.guardrails.verdict import ScanContext

_SCANNER = RefusalScanner()  # frozen and stateless
_CONTEXT = ScanContext()


def is_refusal(text: str | None) -> bool:
    """True when the answer reads as a refusal."""
    if not text:
        return False
    # The scanner's phrasings spell apostrophes as ASCII; models often write U+2019.
    return _SCANNER.scan(text.replace("\u2019", "'"), _CONTEXT).score > 0
