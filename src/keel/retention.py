"""Retention from policy: each stored version's logging policy (or the default) becomes
purge rules; ``keel retention apply`` and the server's scheduled task run them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from keel.core.logging_policy import LoggingPolicy
from keel.store import Store
from keel.store.retention import RetentionRepository, RetentionRule


def rules(store: Store, default_days: float | None) -> list[RetentionRule]:
    """Per version: whole-trace retention, then per-layer payload retention."""
    found: list[RetentionRule] = []
    for summary in store.pipelines.list_pipelines():
        for stored in store.pipelines.list_versions(summary.name):
            policy = LoggingPolicy.model_validate(stored.spec.get("logging") or {})
            days = policy.retention_days or default_days
            if days is not None:
                found.append(RetentionRule(summary.name, stored.version, days))
            for layer, rule in policy.layers.items():
                if rule.retention_days is not None:
                    found.append(
                        RetentionRule(summary.name, stored.version, rule.retention_days, layer)
                    )
    return found


@dataclass(slots=True)
class PurgeReport:
    traces_deleted: int = 0
    payloads_cleared: int = 0
    rules: list[dict[str, object]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "traces_deleted": self.traces_deleted,
            "payloads_cleared": self.payloads_cleared,
            "rules": self.rules,
        }


def apply_retention(
    store: Store, default_days: float | None, now: datetime | None = None
) -> PurgeReport:
    repository = RetentionRepository(store.engine)
    report = PurgeReport()
    moment = now or datetime.now(UTC)
    for rule in rules(store, default_days):
        count = repository.purge(rule, moment)
        if rule.layer is None:
            report.traces_deleted += count
        else:
            report.payloads_cleared += count
        report.rules.append(
            {"pipeline": rule.pipeline, "version": rule.version, "layer": rule.layer,
             "days": rule.days, "purged": count}
        )  # fmt: skip
    return report
