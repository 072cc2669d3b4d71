"""One evaluated trial: a pipeline run on one dataset item, with its evaluator scores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

TRIAL_OK = "ok"
TRIAL_ERROR = "error"
TRIAL_TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class TrialResult:
    """What one trial produced. ``scores`` maps metric name to a number, or None when the
    metric does not apply (e.g. no expected answer); failed runs carry no scores."""

    item_id: str
    trial: int
    status: str
    scores: Mapping[str, float | None]
    output: Any = None
    error_code: str | None = None
    trace_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    model_version: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == TRIAL_OK
