"""Settings for closing the loop: feedback, sampled review, online evaluation, SLOs, drift
monitors and alerts. Part of the one settings tree in :mod:`keel.settings`."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OnlineEvalSettings(_Section):
    pipeline: str = Field(description="Pipeline name whose production traces are scored.")
    evaluators: list[str] = Field(
        min_length=1,
        description="Evaluator specs as `keel eval run -e` takes them (`NAME[:OPTIONS]`); "
        "only reference-free metrics apply, since production traffic has no expected answer.",
    )
    sample_rate: float = Field(
        0.1, ge=0, le=1, description="Share of this pipeline's production traces scored."
    )


class FeedbackSettings(_Section):
    review_sample_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of every pipeline's production traces that goes to the sampled "
        "review queue, unless `review_sample_rates` names the pipeline.",
    )
    review_sample_rates: dict[str, float] = Field(
        default_factory=dict,
        description="Per-pipeline share of production traces for sampled review, e.g. "
        '`{"support-triage": 0.05}`.',
    )
    accuracy_target: float = Field(
        0.9, gt=0, le=1, description="Accuracy a pipeline should reach in sampled review."
    )
    accuracy_targets: dict[str, float] = Field(
        default_factory=dict, description="Per-pipeline accuracy targets (override the default)."
    )
    accuracy_window_hours: float = Field(
        168.0, gt=0, description="Sampled traces of the last this many hours count for accuracy."
    )
    confidence: float = Field(
        0.95, gt=0.5, lt=1, description="Confidence level of accuracy and online-score intervals."
    )
    online_evals: list[OnlineEvalSettings] = Field(
        default_factory=list,
        description="Evaluators that score a sampled share of a pipeline's production traces "
        "off the request path.",
    )
    queue_size: int = Field(
        1000,
        ge=1,
        description="Sampled traces waiting for review intake or online scoring; beyond this "
        "they are dropped and counted.",
    )
    override_min_decisions: int = Field(
        20,
        ge=1,
        description="Judged traces a user needs before their override rate is tested.",
    )
    override_alpha: float = Field(
        0.01,
        gt=0,
        lt=1,
        description="Family-wise significance level (Holm) of the anomalous-override test.",
    )
    flood_corrections_per_hour: int = Field(
        30,
        ge=1,
        description="Corrections one user may send in an hour before their shared feedback is "
        "flagged as flooding.",
    )
    toxicity_threshold: float = Field(
        0.8, gt=0, le=1, description="Toxicity score at which shared feedback is flagged."
    )

    def sample_rate(self, pipeline: str) -> float:
        return self.review_sample_rates.get(pipeline, self.review_sample_rate)

    def target(self, pipeline: str) -> float:
        return self.accuracy_targets.get(pipeline, self.accuracy_target)

    @model_validator(mode="after")
    def _shares(self) -> FeedbackSettings:
        for name, value in [*self.review_sample_rates.items(), *self.accuracy_targets.items()]:
            if not 0 <= value <= 1:
                raise ValueError(f"{name}: rates and targets are between 0 and 1, got {value}")
        return self


class SLOSettings(_Section):
    pipeline: str = Field(description="Pipeline name the objectives apply to.")
    availability: float | None = Field(
        0.995,
        gt=0,
        lt=1,
        description="Share of runs that must not fail on the service's side (model, provider, "
        "internal errors; bad input and guardrail blocks do not count); empty: no objective.",
    )
    latency_p95_ms: float | None = Field(
        None,
        gt=0,
        description="95th-percentile run latency objective in milliseconds: 95 % of runs "
        "must be faster; empty: no objective.",
    )
    error_rate: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Largest share of runs that may fail for any reason except guardrail "
        "blocks and held answers; empty: no objective.",
    )
    guardrail_violation_rate: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Largest share of runs a guardrail may block; empty: no objective.",
    )
    cost_per_day_usd: Decimal | None = Field(
        None, gt=0, description="Daily spending budget in US dollars; empty: no objective."
    )
    period_days: float = Field(
        30.0, gt=0, description="SLO period the error budget is spread over."
    )


class BurnRateRule(_Section):
    long_window_s: float = Field(gt=0, description="Long window in seconds.")
    short_window_s: float = Field(gt=0, description="Short window in seconds.")
    budget_share: float = Field(
        gt=0,
        le=1,
        description="Share of the period's error budget whose loss within the long window "
        "fires the rule; the burn-rate factor is share x period / long window.",
    )
    severity: Literal["page", "ticket"] = Field(description="Severity of the alert.")


def _workbook_rules() -> list[BurnRateRule]:
    """The SRE workbook's four rules: 2 % of a 30-day budget in 1 h (5 min), 5 % in 6 h
    (30 min) page; 10 % in 1 day (2 h) and in 3 days (6 h) open a ticket."""
    rules = [(3600, 300, 0.02, "page"), (21600, 1800, 0.05, "page"),
             (86400, 7200, 0.10, "ticket"), (259200, 21600, 0.10, "ticket")]  # fmt: skip
    keys = ("long_window_s", "short_window_s", "budget_share", "severity")
    return [BurnRateRule.model_validate(dict(zip(keys, rule, strict=True))) for rule in rules]


class DriftMonitorSettings(_Section):
    pipeline: str = Field(description="Pipeline whose traffic is checked.")
    window_seconds: float = Field(
        3600.0, gt=0, description="Current window: the traffic of the last this many seconds."
    )
    reference_seconds: float = Field(
        7 * 86400.0,
        gt=0,
        description="Reference window: this many seconds of traffic just before the current "
        "window.",
    )
    interval_seconds: float = Field(900.0, ge=1, description="Seconds between two checks.")
    confirmations: int = Field(
        1,
        ge=1,
        description="Consecutive drifting checks needed before a drift alert fires.",
    )


class GoldenSchedule(_Section):
    pipeline: str = Field(description="Pipeline NAME@LABEL (e.g. `triage@production`) to evaluate.")
    dataset: str = Field(description="Golden dataset NAME or NAME@VERSION.")
    interval_seconds: float = Field(86400.0, ge=1, description="Seconds between two runs.")
    evaluators: list[str] = Field(
        default_factory=list, description="Evaluators, as for `keel eval run -e`."
    )
    repeats: int = Field(1, ge=1, description="Trials per item.")


class NotificationTargetSettings(_Section):
    url: str = Field(description="Webhook URL (http or https).")
    format: Literal["json", "slack"] = Field(
        "json", description="`json` (the alert as JSON) or `slack` (`text` plus blocks)."
    )
    name: str = Field("", description="Shown in delivery records instead of the URL.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra HTTP headers, e.g. an authorization token."
    )

    @model_validator(mode="after")
    def _http_only(self) -> NotificationTargetSettings:
        if not self.url.lower().startswith(("http://", "https://")):
            raise ValueError(f"notification url {self.url!r} must start with http:// or https://")
        return self


class MonitoringSettings(_Section):
    evaluate_seconds: float = Field(
        60.0, gt=0, description="How often the server evaluates SLOs and open alerts."
    )
    slos: list[SLOSettings] = Field(
        default_factory=list, description="Service-level objectives per pipeline."
    )
    burn_rates: list[BurnRateRule] = Field(
        default_factory=_workbook_rules,
        description="Multi-window burn-rate rules; the default is the SRE workbook's four.",
    )
    min_events: int = Field(
        10, ge=1, description="Runs a long window needs before a ratio objective can fire."
    )
    drift: list[DriftMonitorSettings] = Field(
        default_factory=list, description="Drift monitors per pipeline."
    )
    drift_alpha: float = Field(
        0.01,
        gt=0,
        lt=0.5,
        description="False-alarm rate of one drift check (Bonferroni over its metrics).",
    )
    drift_min_samples: int = Field(
        30, ge=5, description="Runs each window needs before a drift metric is tested."
    )
    drift_max_samples: int = Field(
        2000, ge=10, description="Newest runs read per window (embeddings: 300 of them)."
    )
    drift_permutations: int = Field(
        200,
        ge=50,
        description="Permutations of the embedding (MMD) test; at least 12 / drift_alpha are "
        "run so its p-value can reach the corrected level.",
    )
    golden: list[GoldenSchedule] = Field(
        default_factory=list,
        description="Scheduled golden-set evaluations, each compared with its last passing run.",
    )
    notifications: list[NotificationTargetSettings] = Field(
        default_factory=list, description="Webhooks told when an alert fires or resolves."
    )
    notify_timeout_s: float = Field(5.0, gt=0, description="Seconds for one delivery attempt.")
    notify_attempts: int = Field(
        3, ge=1, description="Attempts per delivery (connection errors, timeouts, 429, 5xx)."
    )
    notify_backoff_s: float = Field(
        0.5, ge=0, description="First wait between attempts; doubles per attempt."
    )
    allow_private_targets: bool = Field(
        False,
        description="Allow webhooks on loopback, private and link-local addresses (refused by "
        "default so alerts cannot reach internal services).",
    )
