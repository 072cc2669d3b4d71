"""Counts of guardrail rules that fired, per pipeline, rule and action (this process only)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class GuardrailStats:
    """Thread-safe counters; one per Runtime, read by ``GET /api/guardrails/stats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fired: Counter[tuple[str, str, str]] = Counter()

    def fired(self, pipeline: str, rule: str, action: str) -> None:
        with self._lock:
            self._fired[(pipeline, rule, action)] += 1

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            items = sorted(self._fired.items())
        return [{"pipeline": p, "rule": r, "action": a, "count": n} for (p, r, a), n in items]
