"""What an evaluator is: a plugin that scores one trial (a pipeline answer to one item).

Each evaluator declares the metrics it produces. A metric is ``pass`` (0 or 1 per trial:
reported as a rate with a Wilson interval, with pass@k and pass^k when there are repeats)
or ``score`` (any number: mean with a BCa interval), and says which direction is better.
A score of None means "does not apply to this item" (e.g. no expected answer) and is left
out of that metric.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Protocol

from keel.core.dataset import DatasetItem
from keel.core.decision import Decision
from keel.core.errors import ConfigError
from keel.core.trial import TrialResult
from keel.core.usage import Usage

if TYPE_CHECKING:
    from keel.pipeline.generate import ModelSource
    from keel.pipeline.runner import RunResult

MetricKind = Literal["pass", "score"]


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    kind: MetricKind
    higher_is_better: bool = True
    description: str = ""
    # Whether a significant change for the worse fails the gate. Operational metrics
    # (latency, cost) are reported but gated only through absolute thresholds, since tiny
    # yet "significant" slowdowns on a noisy machine should not fail CI.
    gated: bool = True


@dataclass(frozen=True, slots=True)
class Case:
    """A finished pipeline run on one dataset item, as evaluators see it."""

    item: DatasetItem
    output: Any
    text: str
    decision: Decision | None = None
    latency_ms: float = 0.0
    cost_usd: Decimal = Decimal(0)
    usage: Usage = field(default_factory=Usage)
    citations: tuple[Mapping[str, Any], ...] = ()  # what retrieval put into the prompt

    @classmethod
    def of_run(cls, item: DatasetItem, result: RunResult) -> Case:
        """The case of a pipeline run's result on ``item``."""
        return cls(
            item,
            result.output,
            result.text,
            result.decision,
            result.latency_ms,
            result.cost_usd,
            result.usage,
            tuple(result.citations),
        )

    @property
    def answer(self) -> str:
        """The answer as text: the label for label pipelines, else the output."""
        if self.decision is not None and self.decision.label is not None:
            return self.decision.label
        return as_text(self.output if self.output is not None else self.text)

    @property
    def predicted_label(self) -> str | None:
        return self.decision.label if self.decision is not None else None


@dataclass(frozen=True, slots=True)
class Scored:
    scores: dict[str, float | None]
    details: dict[str, Any] = field(default_factory=dict)


class Evaluator(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def metrics(self) -> Sequence[Metric]: ...

    async def evaluate(self, case: Case) -> Scored: ...


class Aggregating(Protocol):
    """An evaluator that also reports a whole-run view (e.g. a confusion matrix)."""

    def aggregate(
        self, items: Sequence[DatasetItem], results: Sequence[TrialResult]
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class EvalContext:
    """What evaluators may use: the provider registry (for judge models) and defaults."""

    models: ModelSource | None = None
    judge_model: str | None = None


EvaluatorFactory = Callable[[Mapping[str, Any], EvalContext], Evaluator]


@dataclass(frozen=True, slots=True)
class EvaluatorPlugin:
    name: str
    factory: EvaluatorFactory
    description: str = ""


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def expected_text(item: DatasetItem) -> str | None:
    """The reference answer as text: ``expected``, else the label, else None."""
    if item.expected is not None:
        return as_text(item.expected)
    return item.label


def option(options: Mapping[str, Any], key: str, evaluator: str, default: Any = None) -> Any:
    if key in options:
        return options[key]
    if default is None:
        raise ConfigError(
            f"evaluator {evaluator!r} needs option {key!r}, e.g. -e '{evaluator}:{key}=…'",
            code="evaluator_option_missing",
        )
    return default


def check_options(options: Mapping[str, Any], allowed: set[str], evaluator: str) -> None:
    unknown = set(options) - allowed
    if unknown:
        raise ConfigError(
            f"evaluator {evaluator!r} has no option(s) {', '.join(sorted(unknown))}; "
            f"accepted: {', '.join(sorted(allowed)) or 'none'}",
            code="evaluator_option_unknown",
        )
