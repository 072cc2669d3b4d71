"""What monitoring reads of stored traffic: one run's sample for drift checks, and a
window's outcome counts for SLOs. Plain values; the store fills them, drift and SLO logic
read them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class TraceSample:
    """What drift checks read of one run."""

    trace_id: str
    start_ns: int
    input_text: str | None
    label: str | None
    answer: str | None
    model_version: str | None


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """Runs of one pipeline in one window, by outcome.

    ``errors`` are failed runs except policy outcomes (guardrail blocks, held answers);
    ``server_errors`` are those not caused by the caller's input either (availability).
    """

    total: int = 0
    errors: int = 0
    server_errors: int = 0
    guardrail_blocked: int = 0
    slow: int = 0
    cost_usd: Decimal = Decimal(0)
