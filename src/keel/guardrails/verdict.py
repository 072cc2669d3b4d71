"""What a scanner says about one text: a score, a category and the spans it found."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Finding:
    """One span of the scanned text (character offsets) and what it is."""

    start: int
    end: int
    entity: str
    score: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "entity": self.entity, "score": self.score}


@dataclass(frozen=True, slots=True)
class Verdict:
    score: float
    category: str
    findings: tuple[Finding, ...] = ()
    reason: str = ""

    @classmethod
    def clean(cls, category: str) -> Verdict:
        return cls(0.0, category)

    def to_dict(self) -> dict[str, Any]:
        # Offsets and entity types only: the matched text itself never goes into a span.
        return {
            "score": round(self.score, 4),
            "category": self.category,
            "reason": self.reason,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class ScanContext:
    """What a scanner may know besides the text: the run's input and prompts."""

    input_text: str = ""
    system_prompt: str = ""
    canary: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class Scanner(Protocol):
    """A guardrail check. Pure and synchronous: a scanner does no I/O and keeps no state."""

    @property
    def name(self) -> str: ...

    def scan(self, text: str, context: ScanContext) -> Verdict: ...


def merge_spans(findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
    """Findings sorted by start, overlaps resolved in favour of the longer/earlier span."""
    kept: list[Finding] = []
    for item in sorted(findings, key=lambda f: (f.start, -(f.end - f.start))):
        if kept and item.start < kept[-1].end:
            continue
        kept.append(item)
    return tuple(kept)
