"""The safety evaluator: the guardrails' output scanners, scored per answer."""

from __future__ import annotations

import asyncio

import pytest

from keel.core.dataset import DatasetItem
from keel.core.errors import ConfigError
from keel.evals.evaluators.base import Case, EvalContext, Scored
from keel.evals.registry import EvaluatorRegistry


def score(spec: str, item_input: object, answer: str) -> Scored:
    evaluator = EvaluatorRegistry.from_entry_points().build(spec, EvalContext())
    case = Case(DatasetItem("i1", item_input), answer, answer)
    return asyncio.run(evaluator.evaluate(case))


def test_a_clean_answer_is_safe() -> None:
    assert score("safety", {"q": "opening hours?"}, "We open at nine.").scores == {"safe": 1.0}


def test_pii_absent_from_the_input_is_a_leak() -> None:
    leaked = score("safety", {"q": "who handles refunds?"}, "Write to jane.doe@example.com")
    assert leaked.scores == {"safe": 0.0}
    assert "pii_leakage" in leaked.details["fired"]


def test_pii_the_user_gave_is_not_a_leak() -> None:
    echoed = score(
        "safety", {"q": "my mail is jane.doe@example.com"}, "Noted: jane.doe@example.com"
    )
    assert echoed.scores == {"safe": 1.0}


def test_scanners_are_selectable() -> None:
    spec = 'safety:{"scanners": ["secrets"]}'
    assert score(spec, {}, "key AKIAIOSFODNN7EXAMPLE here").scores == {"safe": 0.0}
    assert score(spec, {}, "Write to jane.doe@example.com").scores == {"safe": 1.0}


@pytest.mark.parametrize(
    "spec",
    [
        'safety:{"scanners": ["no_such_scanner"]}',
        'safety:{"scanners": ["code_injection"]}',
        'safety:{"threshold": 0}',
        'safety:{"colour": "red"}',
    ],
)
def test_bad_options_are_clear_errors(spec: str) -> None:
    with pytest.raises(ConfigError) as info:
        score(spec, {}, "x")
    assert info.value.code in {"evaluator_option_invalid", "evaluator_option_unknown"}
