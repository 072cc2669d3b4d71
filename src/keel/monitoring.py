"""Monitoring, composed from settings: SLO evaluation, drift monitors, golden-set schedules and
the alert engine that turns them into notified alert episodes.

One ``Monitoring`` per process (held by the ``Runtime``). Building it is cheap: the embedder
and the language model load on the first drift check. Features add alert conditions with
``runtime.monitoring.engine.add(condition)``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from keel.alerts.engine import AlertEngine
from keel.alerts.notify import Notifier, Target
from keel.drift.check import DriftReport
from keel.drift.features import BundledFeatureExtractor, FeatureExtractor
from keel.drift.monitor import DriftMonitor, Windows, policy_from, run_check
from keel.settings import DriftMonitorSettings, MonitoringSettings
from keel.slo.burn import SLOStatus
from keel.slo.service import SLOEvaluator
from keel.store.monitoring import NS

if TYPE_CHECKING:
    from keel.store import Store


def build_notifier(settings: MonitoringSettings) -> Notifier:
    targets = [Target(t.url, t.format, t.name, dict(t.headers)) for t in settings.notifications]
    return Notifier(
        targets,
        timeout_s=settings.notify_timeout_s,
        attempts=settings.notify_attempts,
        backoff_s=settings.notify_backoff_s,
        allow_private=settings.allow_private_targets,
    )


class Monitoring:
    def __init__(
        self,
        store: Store,
        settings: MonitoringSettings,
        *,
        extractor: FeatureExtractor | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.extractor = extractor or BundledFeatureExtractor()
        self.slos = SLOEvaluator(store, settings)
        self.engine = AlertEngine(store, build_notifier(settings))
        if settings.slos:
            self.engine.add(self.slos)
        self.drift_monitors = [
            DriftMonitor(
                store,
                self.extractor,
                config,
                policy_from(settings),
                max_samples=settings.drift_max_samples,
            )
            for config in settings.drift
        ]
        for monitor in self.drift_monitors:
            self.engine.add(monitor)

    def slo_status(self, pipeline: str | None = None) -> list[SLOStatus]:
        return self.slos.statuses(datetime.now(UTC), pipeline)

    def drift_config(self, pipeline: str) -> DriftMonitorSettings:
        for config in self.settings.drift:
            if config.pipeline == pipeline:
                return config
        return DriftMonitorSettings(pipeline=pipeline)

    def drift_check(
        self,
        pipeline: str,
        *,
        window_s: float | None = None,
        reference_s: float | None = None,
        now: datetime | None = None,
    ) -> tuple[DriftReport, Windows]:
        """One drift check now, outside the schedule (blocking: call off the event loop)."""
        self.store.pipelines.list_versions(pipeline)  # an unknown pipeline is a clear 404
        config = self.drift_config(pipeline)
        now_ns = int((now or datetime.now(UTC)).timestamp() * NS)
        windows = Windows.trailing(
            now_ns, window_s or config.window_seconds, reference_s or config.reference_seconds
        )
        report = run_check(
            self.store, self.extractor, pipeline, windows, policy_from(self.settings),
            max_samples=self.settings.drift_max_samples,
        )  # fmt: skip
        return report, windows
