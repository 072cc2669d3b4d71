"""LLM-as-judge: a rubric prompt to a judge model, its score parsed robustly, its cost kept.

The judge is any model the provider registry can resolve (``provider:model``), chosen per
evaluator (``-e 'judge:model=openai:gpt-4o-mini'``) or by ``evals.judge_model``. The judge is
asked for JSON ``{"score": N, "reason": "…"}``; when it answers otherwise, the score is taken
from ``score: N``, ``N/MAX`` or the first number in range, in that order. An answer without
a usable score yields None (not a zero) and the raw reply is kept in the details. Judge
tokens and cost go into each trial's details and the run summary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keel.core.errors import ConfigError, KeelError
from keel.core.messages import ChatRequest, GenerationParams, Message, ModelRef
from keel.evals.evaluators.base import (
    Case,
    EvalContext,
    EvaluatorPlugin,
    Metric,
    Scored,
    as_text,
    check_options,
    expected_text,
)
from keel.pipeline.generate import ModelSource

DEFAULT_RUBRIC = (
    "Rate how well the answer responds to the input: correct, complete, and consistent with "
    "the reference answer when one is given."
)
_SYSTEM = (
    "You are a strict evaluator. Rubric: {rubric}\n"
    "Score from {low} (worst) to {high} (best). Reply with JSON only: "
    '{{"score": <integer {low}-{high}>, "reason": "<one sentence>"}}'
)
_JSON_OBJECT = re.compile(r"\{.*?\}", re.DOTALL)
_LABELLED = re.compile(r"score\W{0,3}(-?\d+(?:\.\d+)?)", re.IGNORECASE)
_FRACTION = re.compile(r"(-?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_score(text: str, low: float, high: float) -> float | None:
    """The judge's score on its own scale, or None when no in-range score can be found."""
    for match in _JSON_OBJECT.finditer(text):
        try:
            data = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and isinstance(data.get("score"), int | float | str):
            try:
                value = float(data["score"])
            except ValueError:
                continue
            if low <= value <= high:
                return value
    labelled = _LABELLED.search(text)
    if labelled and low <= float(labelled.group(1)) <= high:
        return float(labelled.group(1))
    fraction = _FRACTION.search(text)
    if fraction and float(fraction.group(2)) == high and low <= float(fraction.group(1)) <= high:
        return float(fraction.group(1))
    for number in _NUMBER.findall(text):
        if low <= float(number) <= high:
            return float(number)
    return None


@dataclass(frozen=True, slots=True)
class JudgeCall:
    """One question to a judge model, with what it cost."""

    models: ModelSource
    model_id: str

    async def ask(self, system: str, user: str) -> tuple[str, dict[str, Any]]:
        model = self.models.model(self.model_id)
        request = ChatRequest(
            model=ModelRef.parse(self.model_id).name,
            messages=(Message("system", system), Message("user", user)),
            params=GenerationParams(temperature=0.0, max_tokens=200),
        )
        response = await model.complete(request)
        usage = response.usage
        return response.text, {
            "judge_model": self.model_id,
            "judge_input_tokens": usage.input_tokens,
            "judge_output_tokens": usage.output_tokens,
            "judge_cost_usd": str(model.profile.cost(usage)),
        }


@dataclass(frozen=True, slots=True)
class Judge:
    call: JudgeCall
    rubric: str
    low: float = 1
    high: float = 5
    metric: str = "judge"
    name: str = "judge"
    version: str = "1"

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return (Metric(self.metric, "score", description=f"judge score, {self.rubric[:60]}"),)

    async def evaluate(self, case: Case) -> Scored:
        parts = [f"Input:\n{as_text(case.item.input)}", f"Answer:\n{case.answer}"]
        reference = expected_text(case.item)
        if reference is not None:
            parts.insert(1, f"Reference answer:\n{reference}")
        system = _SYSTEM.format(rubric=self.rubric, low=int(self.low), high=int(self.high))
        try:
            reply, details = await self.call.ask(system, "\n\n".join(parts))
        except KeelError as exc:
            return Scored({self.metric: None}, {"judge_error": exc.code})
        raw = parse_score(reply, self.low, self.high)
        if raw is None:
            return Scored({self.metric: None}, details | {"judge_unparsed": reply[:500]})
        return Scored({self.metric: (raw - self.low) / (self.high - self.low)}, details)


def judge_call(options: Mapping[str, Any], context: EvalContext, evaluator: str) -> JudgeCall:
    model_id = options.get("model") or context.judge_model
    if not model_id or context.models is None:
        msg = (
            f"evaluator {evaluator!r} needs a judge model: -e '{evaluator}:model=provider:model' "
            "or the evals.judge_model setting"
        )
        raise ConfigError(msg, code="judge_model_missing")
    return JudgeCall(context.models, str(model_id))


def _factory(options: Mapping[str, Any], context: EvalContext) -> Judge:
    check_options(options, {"model", "rubric", "low", "high", "metric"}, "judge")
    low, high = float(options.get("low", 1)), float(options.get("high", 5))
    if not low < high:
        raise ConfigError("judge: low must be below high", code="evaluator_options_invalid")
    return Judge(
        judge_call(options, context, "judge"),
        str(options.get("rubric", DEFAULT_RUBRIC)),
        low,
        high,
        str(options.get("metric", "judge")),
    )


plugin = EvaluatorPlugin("judge", _factory, "LLM-as-judge with a rubric; score scaled to 0..1.")
