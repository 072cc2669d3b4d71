"""Postprocessing for classification: from model text to a business decision.

Thresholds are business parameters, versioned with the pipeline and apart from the model:
a label is acted on only when its confidence reaches the label's threshold; anything
unknown, unparseable or unsure falls back to the spec's default decision.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from keel.core.spec import LabelOutput

Reason = Literal["confident", "below_threshold", "unknown_label", "unparseable"]

_LABEL_KEYS = ("label", "category", "class", "queue", "answer")
_CONFIDENCE_KEYS = ("confidence", "score", "probability")
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Decision:
    decision: str
    label: str | None
    confidence: float | None
    reason: Reason

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "label": self.label,
            "confidence": self.confidence,
            "reason": self.reason,
        }


def _normalize(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _as_confidence(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if number > 1 and number <= 100:
        number /= 100  # a percentage
    return number if 0 <= number <= 1 else None


def extract_label(text: str, allowed: list[str]) -> tuple[str | None, float | None, bool]:
    """(label, confidence, parsed) from model output: JSON first, then a lone label mention."""
    by_norm = {_normalize(label): label for label in allowed}
    match = _JSON_OBJECT.search(text)
    if match:
        try:
            data = json.loads(match.group(0))
        except ValueError:
            data = None
        if isinstance(data, dict):
            raw = next((data[k] for k in _LABEL_KEYS if isinstance(data.get(k), str)), None)
            conf = next((data[k] for k in _CONFIDENCE_KEYS if k in data), None)
            if raw is not None:
                return by_norm.get(_normalize(raw), raw), _as_confidence(conf), True
    normalized = f"-{_normalize(text)}-"
    found = [label for norm, label in by_norm.items() if f"-{norm}-" in normalized]
    if len(found) == 1:
        return found[0], None, True
    return None, None, False


def decide(output: LabelOutput, text: str) -> Decision:
    label, confidence, parsed = extract_label(text, list(output.labels))
    if not parsed or label is None:
        return Decision(output.default_decision, None, None, "unparseable")
    rule = output.labels.get(label)
    if rule is None:
        return Decision(output.default_decision, label, confidence, "unknown_label")
    if rule.threshold > 0 and (confidence is None or confidence < rule.threshold):
        return Decision(output.default_decision, label, confidence, "below_threshold")
    return Decision(rule.decision or label, label, confidence, "confident")


def label_schema(output: LabelOutput) -> dict[str, Any]:
    """JSON Schema asking the model for ``{"label": ..., "confidence": ...}``."""
    return {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": list(output.labels)},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["label", "confidence"],
        "additionalProperties": False,
    }
