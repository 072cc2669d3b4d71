"""Drift monitors: gather a pipeline's two windows from the trace store, test them, and
report input drift, output drift and model-version changes as alert signals."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keel.alerts.condition import Signal
from keel.drift.check import (
    INPUT_METRICS,
    OUTPUT_METRICS,
    DriftPolicy,
    DriftReport,
    check_drift,
)
from keel.drift.features import FeatureExtractor
from keel.settings import DriftMonitorSettings, MonitoringSettings
from keel.store import Store
from keel.store.monitoring import NS


@dataclass(frozen=True, slots=True)
class Windows:
    reference: tuple[int, int]  # [start_ns, end_ns)
    current: tuple[int, int]

    @classmethod
    def trailing(cls, now_ns: int, window_s: float, reference_s: float) -> Windows:
        split = now_ns - int(window_s * NS)
        return cls((split - int(reference_s * NS), split), (split, now_ns + 1))

    def to_dict(self) -> dict[str, Any]:
        def iso(ns: int) -> str:
            return datetime.fromtimestamp(ns / NS, UTC).isoformat(timespec="seconds")

        return {
            "reference": [iso(self.reference[0]), iso(self.reference[1])],
            "current": [iso(self.current[0]), iso(self.current[1])],
        }


def policy_from(settings: MonitoringSettings) -> DriftPolicy:
    return DriftPolicy(
        alpha=settings.drift_alpha,
        min_samples=settings.drift_min_samples,
        permutations=settings.drift_permutations,
    )


def run_check(
    store: Store,
    extractor: FeatureExtractor,
    pipeline: str,
    windows: Windows,
    policy: DriftPolicy,
    *,
    max_samples: int = 2000,
) -> DriftReport:
    """Read both windows of a pipeline's runs and test them (blocking: call off the loop)."""
    reference = store.monitoring.samples(pipeline, *windows.reference, limit=max_samples)
    current = store.monitoring.samples(pipeline, *windows.current, limit=max_samples)
    return check_drift(extractor.features(reference), extractor.features(current), policy)


def _summary(pipeline: str, what: str, report: DriftReport, metrics: tuple[str, ...]) -> str:
    drifted = report.drifted(metrics)
    if not drifted:
        return f"{pipeline}: no {what} drift"
    parts = ", ".join(f"{r.metric} (p={r.p_value:.2g})" for r in drifted)
    return f"{pipeline}: {what} drift in {parts}; per-test level {report.threshold:.2g}"


@dataclass(slots=True)
class DriftMonitor:
    """One pipeline's scheduled check; an alert condition. Holds the consecutive-drift
    streaks (per process) that ``confirmations`` asks for."""

    store: Store
    extractor: FeatureExtractor
    config: DriftMonitorSettings
    policy: DriftPolicy
    max_samples: int = 2000
    last_run: float | None = None
    streaks: dict[str, int] = field(default_factory=dict)
    last_report: DriftReport | None = None

    def due(self) -> bool:
        return self.last_run is None or time.monotonic() - self.last_run >= (
            self.config.interval_seconds
        )

    def evaluate(self, now: datetime) -> list[Signal]:
        if not self.due():
            return []
        self.last_run = time.monotonic()
        windows = Windows.trailing(
            int(now.timestamp() * NS), self.config.window_seconds, self.config.reference_seconds
        )
        report = run_check(
            self.store, self.extractor, self.config.pipeline, windows, self.policy,
            max_samples=self.max_samples,
        )  # fmt: skip
        self.last_report = report
        return self.signals(report, windows)

    def _confirmed(self, key: str, drifting: bool) -> bool:
        self.streaks[key] = self.streaks.get(key, 0) + 1 if drifting else 0
        return self.streaks[key] >= self.config.confirmations

    def signals(self, report: DriftReport, windows: Windows) -> list[Signal]:
        pipeline = self.config.pipeline
        details = report.to_dict() | {"windows": windows.to_dict()}
        out = []
        for what, metrics, drifting in (
            ("input", INPUT_METRICS, report.input_drift),
            ("output", OUTPUT_METRICS, report.output_drift),
        ):
            key = f"drift:{pipeline}:{what}"
            out.append(
                Signal(
                    key,
                    self._confirmed(key, drifting),
                    details,
                    _summary(pipeline, what, report, metrics),
                    kind=f"{what}_drift",
                    pipeline=pipeline,
                )
            )
        versions = ", ".join(report.new_versions)
        summary = (
            f"{pipeline}: the provider reports a new model version ({versions}); before: "
            f"{', '.join(sorted(report.versions_reference)) or 'none'}"
            if report.version_changed
            else f"{pipeline}: model version unchanged"
        )
        out.append(
            Signal(
                f"drift:{pipeline}:model_version",
                report.version_changed,
                details,
                summary,
                kind="model_version",
                pipeline=pipeline,
            )
        )
        return out
