"""Evaluators score what a user would check by hand; the registry builds them from specs."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from keel.core.dataset import DatasetItem
from keel.core.decision import Decision
from keel.core.errors import ConfigError
from keel.core.trial import TrialResult
from keel.core.usage import Price
from keel.evals.evaluators.base import Case, EvalContext, Evaluator, Scored
from keel.evals.evaluators.classification import Classification, label_report
from keel.evals.evaluators.judge import parse_score
from keel.evals.evaluators.rag import lexical_scores
from keel.evals.registry import EvaluatorRegistry, parse_spec
from keel.providers.base import ProviderPlugin
from keel.providers.registry import ProviderRegistry
from keel.providers.testing import TestingProvider

REGISTRY = EvaluatorRegistry.from_entry_points()


def build(spec: str, context: EvalContext | None = None) -> Evaluator:
    return REGISTRY.build(spec, context or EvalContext())


def score(evaluator: Evaluator, output: Any, item: DatasetItem, **kw: Any) -> Scored:
    text = output if isinstance(output, str) else json.dumps(output)
    return asyncio.run(evaluator.evaluate(Case(item, output, text, **kw)))


def test_registry_lists_the_builtins_and_parses_specs() -> None:
    assert {
        "exact",
        "contains",
        "regex",
        "json_schema",
        "classification",
        "rouge",
        "bleu",
        "chrf",
        "judge",
        "rag",
        "latency",
        "cost",
    } <= set(REGISTRY.names)
    assert parse_spec("regex:pattern=^a+$") == ("regex", {"pattern": "^a+$"})
    assert parse_spec('judge:{"model": "x:y", "high": 10}') == (
        "judge",
        {"model": "x:y", "high": 10},
    )
    with pytest.raises(ConfigError, match="key=value"):
        parse_spec("regex:oops")
    with pytest.raises(ConfigError) as info:
        build("exact:colour=red")
    assert info.value.code == "evaluator_option_unknown"


def test_exact_contains_regex() -> None:
    item = DatasetItem("a", "q", expected="Paris  is the capital")
    assert score(build("exact"), "Paris is the capital", item).scores == {"exact": 1.0}
    assert score(build("exact"), "paris is the capital", item).scores == {"exact": 0.0}
    assert score(build("exact:ignore_case=true"), "paris is the capital", item).scores["exact"] == 1
    assert score(build("exact"), {"a": 1}, DatasetItem("b", "q", expected={"a": 1})).scores == {
        "exact": 1.0
    }
    assert score(build("exact"), "x", DatasetItem("c", "q")).scores == {"exact": None}
    assert score(build("contains"), "I think PARIS IS THE CAPITAL.", item).scores["contains"] == 0
    assert score(build("contains:value=paris"), "I think PARIS.", item).scores["contains"] == 1
    assert score(build(r"regex:pattern=^\d{3}$"), "123", item).scores == {"regex": 1.0}
    assert score(build(r"regex:pattern=^\d{3}$"), "1234", item).scores == {"regex": 0.0}


def test_label_pipelines_compare_the_decision_label() -> None:
    item = DatasetItem("a", {}, label="billing")
    decision = Decision("queue:billing", "billing", 0.9, "label")
    assert score(build("exact"), {"label": "billing"}, item, decision=decision).scores["exact"] == 1


def test_json_schema_validity() -> None:
    item = DatasetItem("a", "q")
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    checker = build("json_schema:" + json.dumps({"schema": schema}))
    assert score(checker, '{"n": 3}', item).scores == {"json_valid": 1.0}
    bad = score(checker, '{"n": "three"}', item)
    assert (
        bad.scores == {"json_valid": 0.0} and "not of type 'integer'" in bad.details["json_error"]
    )
    assert score(build("json_schema"), "not json", item).scores == {"json_valid": 0.0}
    with pytest.raises(ConfigError):
        build('json_schema:{"schema": {"type": 12}}')


def test_label_report_hand_computed() -> None:
    pairs = [("a", "a"), ("a", "a"), ("a", "b"), ("b", "b"), ("b", "a"), ("c", "c")]
    report = label_report(pairs)
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["confusion"]["a"] == {"a": 2, "b": 1, "c": 0}
    a = report["labels"]["a"]
    assert (a["precision"], a["recall"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    b = report["labels"]["b"]
    assert b["precision"] == 0.5 and b["recall"] == 0.5 and b["f1"] == 0.5
    assert report["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 1.0) / 3)
    never = label_report([("a", "a"), ("b", "a")])  # b is never predicted: F1 0, not skipped
    assert never["labels"]["b"]["precision"] is None and never["labels"]["b"]["f1"] == 0.0
    assert never["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)


def test_classification_aggregates_a_run() -> None:
    items = [DatasetItem("x", {}, label="billing"), DatasetItem("y", {}, label="tech")]
    clf = Classification()
    results = [
        TrialResult("x", 0, "ok", {"accuracy": 1.0}, details={"predicted": "billing"}),
        TrialResult("y", 0, "ok", {"accuracy": 0.0}, details={"predicted": "billing"}),
        TrialResult("y", 1, "error", {}),
    ]
    report = clf.aggregate(items, results)
    assert report["confusion"]["tech"] == {"billing": 1, "tech": 0, "(none)": 1}
    assert report["labels"]["billing"]["precision"] == 0.5


def test_overlap_metrics_match_the_libraries() -> None:
    item = DatasetItem("a", "q", expected="the cat sat on the mat")
    hyp = "a cat sat on a mat"
    rouge = score(build("rouge:types=rouge1;rougeL"), hyp, item).scores
    ref = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True).score(
        "the cat sat on the mat", hyp
    )
    assert rouge == {"rouge1": ref["rouge1"].fmeasure, "rougeL": ref["rougeL"].fmeasure}
    bleu = score(build("bleu"), hyp, item).scores["bleu"]
    assert bleu == pytest.approx(
        sacrebleu.sentence_bleu(hyp, ["the cat sat on the mat"]).score / 100
    )
    assert score(build("chrf"), "the cat sat on the mat", item).scores["chrf"] == pytest.approx(1.0)
    assert score(build("bleu"), hyp, DatasetItem("b", "q")).scores == {"bleu": None}


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"score": 4, "reason": "good"}', 4.0),
        ('Sure! ```json\n{"score": "5"}\n```', 5.0),
        ("Score: 3 - mostly right", 3.0),
        ("I'd give it 2/5.", 2.0),
        ("Rating 9 out of 10... no wait, 4", 4.0),
        ('{"score": 11}', None),
        ("no idea", None),
    ],
)
def test_judge_scores_are_parsed_robustly(reply: str, expected: float | None) -> None:
    assert parse_score(reply, 1, 5) == expected


def _judge_context(replies: list[str]) -> tuple[EvalContext, Any]:
    provider = TestingProvider(price=Price.of(1, 2))
    judge = provider.scripted("judge", replies)
    registry = ProviderRegistry([ProviderPlugin("testing", lambda name, options: provider)])
    return EvalContext(registry, judge_model="testing:judge"), judge


def test_judge_records_tokens_and_cost_and_sees_the_rubric() -> None:
    context, model = _judge_context(['{"score": 4, "reason": "close"}', "whatever"])
    judge = build("judge:rubric=Is it polite?", context)
    item = DatasetItem("a", {"q": "hi"}, expected="hello")
    first = score(judge, "hey", item)
    assert first.scores == {"judge": pytest.approx(0.75)}
    assert (
        first.details["judge_input_tokens"] > 0 and first.details["judge_model"] == "testing:judge"
    )
    usage_cost = (
        Decimal(first.details["judge_input_tokens"]) * 1
        + Decimal(first.details["judge_output_tokens"]) * 2
    )
    assert Decimal(first.details["judge_cost_usd"]) == usage_cost / 1_000_000
    request = model.requests[0]
    assert "Is it polite?" in request.messages[0].content
    assert "hello" in request.messages[1].content and "hey" in request.messages[1].content
    second = score(judge, "hey", item)
    assert second.scores == {"judge": None} and second.details["judge_unparsed"] == "whatever"


def test_judge_needs_a_model() -> None:
    with pytest.raises(ConfigError) as info:
        build("judge")
    assert info.value.code == "judge_model_missing"


def test_rag_lexical_fallback_hand_computed() -> None:
    scores = lexical_scores(
        "Where is the Eiffel tower located?",
        "The Eiffel tower stands in Paris",
        ["The Eiffel tower is in Paris, France."],
    )
    # question words {eiffel, tower, located} ('where' is a stop word): 2 of 3 in the context
    assert scores["context_relevance"] == pytest.approx(2 / 3)
    # answer words {eiffel, tower, stands, paris}: 3 of 4 in the context
    assert scores["faithfulness"] == pytest.approx(3 / 4)
    # shared {eiffel, tower} over the shorter set (3 question words)
    assert scores["answer_relevance"] == pytest.approx(2 / 3)
    item = DatasetItem("a", "Where is the Eiffel tower?", metadata={"contexts": ["Paris"]})
    rag = score(build("rag"), "In Paris", item)
    assert rag.details["rag_mode"] == "lexical" and rag.scores["faithfulness"] == 1.0


def test_rag_uses_the_judge_when_configured() -> None:
    context, _ = _judge_context(['{"score": 5}', '{"score": 3}', '{"score": 1}'])
    item = DatasetItem("a", "Where?", metadata={"contexts": ["Paris"]})
    rag = score(build("rag", context), "Paris", item)
    assert rag.scores == {"context_relevance": 1.0, "faithfulness": 0.5, "answer_relevance": 0.0}
    assert rag.details["rag_mode"] == "judge" and rag.details["judge_input_tokens"] > 0


def test_embedding_similarity_ranks_paraphrases_above_unrelated_text() -> None:
    embedding = build("embedding")
    item = DatasetItem("a", "q", expected="the cat sat on the mat")
    close = score(embedding, "a cat was sitting on a mat", item).scores["embedding_similarity"]
    far = score(embedding, "stock prices fell sharply today", item).scores["embedding_similarity"]
    same = score(embedding, "the cat sat on the mat", item).scores["embedding_similarity"]
    assert same == pytest.approx(1.0, abs=1e-5)
    assert close is not None and far is not None and close > 0.6 > 0.3 > far
    assert score(embedding, "x", DatasetItem("b", "q")).scores == {"embedding_similarity": None}
