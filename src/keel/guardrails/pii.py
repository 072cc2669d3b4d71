"""PII: Presidio's pattern recognizers (run offline, no spaCy model), phone numbers through
``phonenumbers`` and e-mail addresses by pattern. Card numbers and IBANs are checksum-validated
by the recognizers (Luhn, mod-97), so random digit runs are not flagged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from keel.core.errors import SpecError
from keel.guardrails.verdict import Finding, ScanContext, Verdict, merge_spans

# Entity -> presidio recognizer class name. Each one validates what its pattern matches.
PRESIDIO_ENTITIES: dict[str, str] = {
    "CREDIT_CARD": "CreditCardRecognizer",
    "IBAN_CODE": "IbanRecognizer",
    "IP_ADDRESS": "IpRecognizer",
    "US_SSN": "UsSsnRecognizer",
    "US_ITIN": "UsItinRecognizer",
    "US_PASSPORT": "UsPassportRecognizer",
    "UK_NHS": "NhsRecognizer",
    "UK_NINO": "UkNinoRecognizer",
    "CRYPTO": "CryptoRecognizer",
    "MAC_ADDRESS": "MacAddressRecognizer",
    "ES_NIF": "EsNifRecognizer",
    "IT_FISCAL_CODE": "ItFiscalCodeRecognizer",
    "SG_NRIC_FIN": "SgFinRecognizer",
    "IN_PAN": "InPanRecognizer",
}
OWN_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER")
DEFAULT_ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
)
DEFAULT_REGIONS = ("US",)  # numbers in +CC international form are found for any region

_EMAIL = re.compile(
    r"\b[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b"
)

Detector = Callable[[str], list[Finding]]

# Cheap look-outs, each a superset of what the recognizer's own patterns can match: when none
# is in the text the recognizer (a dozen regex passes plus validation) is skipped. Entities
# without one always run.
_LOOKOUT: dict[str, re.Pattern[str]] = {
    "CREDIT_CARD": re.compile(r"\d(?:[ -]?\d){11}"),
    "US_SSN": re.compile(r"\d(?:[- .]?\d){8}"),
    "IBAN_CODE": re.compile(r"(?i)[a-z]{2}\d{2}"),
    "IP_ADDRESS": re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d|:[0-9a-fA-F]{0,4}:"),
}
# A phone number: seven or more digits with the separators people write between them.
_PHONE_RUN = re.compile(r"\+?\(?\d(?:[\d \t().\-/]{0,3}\d){6,}")
_PHONE_MARGIN = 4


def _presidio(entity: str) -> Detector:
    from presidio_analyzer import predefined_recognizers  # heavy import: only when configured

    recognizer = getattr(predefined_recognizers, PRESIDIO_ENTITIES[entity])()
    lookout = _LOOKOUT.get(entity)

    def detect(text: str) -> list[Finding]:
        if lookout is not None and not lookout.search(text):
            return []
        results = recognizer.analyze(text, [entity], None)
        return [Finding(r.start, r.end, r.entity_type, float(r.score)) for r in results]

    return detect


def _email(text: str) -> list[Finding]:
    if "@" not in text:
        return []
    return [Finding(m.start(), m.end(), "EMAIL_ADDRESS") for m in _EMAIL.finditer(text)]


def _phones(regions: Sequence[str]) -> Detector:
    import phonenumbers

    def detect(text: str) -> list[Finding]:
        # The matcher parses and validates every digit group it sees, which is slow on long
        # text; it only runs on windows around runs of seven or more digits.
        found: dict[tuple[int, int], Finding] = {}
        for run in _PHONE_RUN.finditer(text):
            start = max(run.start() - _PHONE_MARGIN, 0)
            window = text[start : run.end() + _PHONE_MARGIN]
            for region in regions:
                leniency = phonenumbers.Leniency.VALID
                for match in phonenumbers.PhoneNumberMatcher(window, region, leniency):
                    span = (start + match.start, start + match.end)
                    found.setdefault(span, Finding(*span, "PHONE_NUMBER", 0.85))
        return list(found.values())

    return detect


@dataclass(frozen=True, slots=True)
class PiiScanner:
    """Scores the most confident PII found; findings carry entity types for redaction."""

    detectors: tuple[Detector, ...]
    entities: tuple[str, ...]
    name: str = "pii"
    category: str = field(default="pii")

    def find(self, text: str) -> tuple[Finding, ...]:
        found: list[Finding] = []
        for detect in self.detectors:
            found.extend(detect(text))
        return merge_spans(tuple(found))

    def scan(self, text: str, context: ScanContext) -> Verdict:
        findings = self.find(text)
        if not findings:
            return Verdict.clean(self.category)
        reason = ", ".join(sorted({f.entity for f in findings}))
        return Verdict(max(f.score for f in findings), self.category, findings, reason)


def build_pii(options: dict[str, Any]) -> PiiScanner:
    entities = tuple(options.get("entities") or DEFAULT_ENTITIES)
    regions = tuple(options.get("regions") or DEFAULT_REGIONS)
    known = set(PRESIDIO_ENTITIES) | set(OWN_ENTITIES)
    unknown = sorted(set(entities) - known)
    if unknown:
        raise SpecError(
            f"pii: unknown entities {unknown}; known: {sorted(known)}", code="guardrail_invalid"
        )
    import phonenumbers  # deferred: only pipelines that scan for PII pay for the import

    bad_regions = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
    if bad_regions:
        raise SpecError(
            f"pii: unknown phone regions {bad_regions}; use ISO 3166 codes such as US, GB",
            code="guardrail_invalid",
        )
    detectors: list[Detector] = []
    for entity in entities:
        if entity == "EMAIL_ADDRESS":
            detectors.append(_email)
        elif entity == "PHONE_NUMBER":
            detectors.append(_phones(regions))
        else:
            detectors.append(_presidio(entity))
    return PiiScanner(tuple(detectors), entities)
