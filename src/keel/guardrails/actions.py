"""Rewriting actions: redact spans, or anonymize them through a per-request vault and restore
the originals in the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from keel.guardrails.verdict import Finding, merge_spans


def redact(text: str, findings: tuple[Finding, ...]) -> str:
    """Each span replaced by ``[ENTITY]``."""
    return _replace(text, findings, lambda f, original: f"[{f.entity}]")


def _replace(
    text: str, findings: tuple[Finding, ...], substitute: Callable[[Finding, str], str]
) -> str:
    parts: list[str] = []
    cursor = 0
    for item in merge_spans(findings):
        parts.append(text[cursor : item.start])
        parts.append(substitute(item, text[item.start : item.end]))
        cursor = item.end
    parts.append(text[cursor:])
    return "".join(parts)


@dataclass(slots=True)
class Vault:
    """Placeholders of one request: the same value always gets the same ``<ENTITY_n>``."""

    by_value: dict[str, str] = field(default_factory=dict)
    by_placeholder: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def anonymize(self, text: str, findings: tuple[Finding, ...]) -> str:
        return _replace(text, findings, self._placeholder)

    def _placeholder(self, finding: Finding, original: str) -> str:
        found = self.by_value.get(original)
        if found is None:
            n = self.counts.get(finding.entity, 0) + 1
            self.counts[finding.entity] = n
            found = f"<{finding.entity}_{n}>"
            self.by_value[original] = found
            self.by_placeholder[found] = original
        return found

    def deanonymize(self, text: str) -> str:
        if not self.by_placeholder:
            return text
        pattern = re.compile("|".join(re.escape(p) for p in self.by_placeholder))
        return pattern.sub(lambda m: self.by_placeholder[m.group()], text)


def strings(value: Any) -> list[str]:
    """Every string leaf of a JSON-like value, in order."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings(v)]
    return []


def map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    """The same structure with ``fn`` applied to every string leaf."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [map_strings(v, fn) for v in value]
    return value
