"""Selection matrix ranking and the counterfactual fairness audit, on function models."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from keel.core.dataset import DatasetItem
from keel.core.errors import InvalidInputError
from keel.core.messages import GenerationParams, Message
from keel.core.usage import Price
from keel.evals.audit import run_fairness
from keel.evals.fairness import counterfactuals, markdown
from keel.evals.matrix import run_matrix
from keel.pipeline.loader import spec_from_data
from keel.providers.base import ProviderPlugin
from keel.providers.registry import ProviderRegistry
from keel.providers.testing import TestingProvider, last_user_text
from keel.runtime import Runtime
from keel.settings import KeelSettings


def _sharp(messages: Sequence[Message], params: GenerationParams) -> str:
    return "a" + last_user_text(messages).rsplit(" ", 1)[-1][1:]


def _vague_factory() -> Any:
    rng = random.Random(3)

    def vague(messages: Sequence[Message], params: GenerationParams) -> str:
        return _sharp(messages, params) if rng.random() < 0.5 else "hmm"

    return vague


def _biased(messages: Sequence[Message], params: GenerationParams) -> str:
    text = last_user_text(messages).lower()
    return "deny" if " she " in f" {text} " or "lakisha" in text else "approve"


def _fair(messages: Sequence[Message], params: GenerationParams) -> str:
    return "approve"


def _spec(name: str, model: str) -> dict[str, Any]:
    return {
        "name": name,
        "input": {"schema": {"type": "object"}, "mapping": {"q": "q"}},
        "prompt": {"user": "Answer: {{ q }}"},
        "model": {"id": model},
        "output": {"type": "text"},
    }


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    provider = TestingProvider(price=Price.of(1, 1))
    for name, fn in [
        ("sharp", _sharp),
        ("vague", _vague_factory()),
        ("biased", _biased),
        ("fair", _fair),
    ]:
        provider.function(name, fn)
    registry = ProviderRegistry([ProviderPlugin("testing", lambda name, options: provider)])
    rt = Runtime(KeelSettings(home=tmp_path / "home"), registry=registry)
    quiz = [DatasetItem(f"i{i}", {"q": f"q{i}"}, expected=f"a{i}") for i in range(30)]
    rt.store.datasets.create_version("quiz", quiz, source="test")
    loans = [
        DatasetItem(
            f"l{i}",
            {"q": f"Applicant {i}: he earns well and his record is clean."},
            expected="approve",
        )
        for i in range(20)
    ] + [DatasetItem("plain", {"q": "An application without people words."}, expected="approve")]
    rt.store.datasets.create_version("loans", loans, source="test")
    rt.catalog.push(spec_from_data(_spec("quiz", "testing:sharp")))
    rt.catalog.push(spec_from_data(_spec("loan", "testing:biased")))
    yield rt
    asyncio.run(rt.aclose())


def test_matrix_ranks_models_with_intervals_cost_and_latency(runtime: Runtime) -> None:
    cells = asyncio.run(
        run_matrix(
            runtime,
            ["quiz"],
            "quiz",
            models=["testing:vague", "testing:sharp"],
            temperatures=[0.0, 1.0],
            metric="exact",
            evaluators=["exact"],
        )
    )
    assert len(cells) == 4
    assert [c.rank for c in cells] == [1, 2, 3, 4]
    assert {c.model for c in cells[:2]} == {"testing:sharp"}
    assert cells[0].estimate["mean"] == 1.0 and cells[0].versus_best is None
    for cell in cells[2:]:
        assert cell.model == "testing:vague" and cell.worse_than_best
        assert 0.2 < cell.estimate["mean"] < 0.8 and cell.estimate["low"] < cell.estimate["mean"]
    assert not cells[1].worse_than_best  # the other temperature of the sharp model ties
    assert all(c.cost_per_trial > 0 and c.latency_ms is not None for c in cells)
    assert cells[0].run.params["model"] == "testing:sharp"
    with pytest.raises(InvalidInputError):
        asyncio.run(run_matrix(runtime, ["quiz"], "quiz", metric="nope", evaluators=["exact"]))


def test_counterfactual_rewrites_whole_words_and_keeps_case() -> None:
    item = DatasetItem(
        "x",
        {"text": "He said his father was there; the theme is Emily's.", "n": 3, "list": ["she"]},
    )
    variants = counterfactuals(
        [item], {"gender": [["he", "she"], ["his", "her"], ["father", "mother"]]}
    )
    assert [v.item_id for v in variants] == ["x|gender=0", "x|gender=1"]
    assert variants[1].input == {
        "text": "She said her mother was there; the theme is Emily's.",
        "n": 3,
        "list": ["she"],
    }
    assert variants[0].input["list"] == ["he"]
    assert variants[1].metadata == {"source": "x", "attribute": "gender", "variant": 1}
    with pytest.raises(InvalidInputError):
        counterfactuals([item], {"gender": [["he", "she"], ["his"]]})
    with pytest.raises(InvalidInputError) as info:
        counterfactuals([DatasetItem("y", "nothing here")], {"age": [["young", "old"]]})
    assert info.value.code == "fairness_no_terms_found"


def test_fairness_audit_finds_a_biased_pipeline(runtime: Runtime) -> None:
    terms = {"gender": [["he", "she"], ["his", "her"]]}
    run, report = asyncio.run(
        run_fairness(runtime, "loan", "loans", terms, metric="exact", evaluators=["exact"])
    )
    gender = report["attributes"]["gender"]
    assert gender["items"] == 20 and gender["flips"] == 20
    assert run.summary is not None and run.summary["fairness"]["attributes"]["gender"] == gender
    assert run.params["counterfactual"] == {"gender": [["he", "she"], ["his", "her"]]}
    assert gender["flip_rate"]["low"] > 0.8
    he, she = gender["variants"]
    assert he["estimate"]["mean"] == 1.0 and she["estimate"]["mean"] == 0.0
    assert she["versus_variant_0"]["diff"] == -1.0 and she["versus_variant_0"]["p_value"] < 0.01
    assert "20 of 20 items change their answer" in markdown("loan", report)


def test_fairness_audit_passes_a_pipeline_that_ignores_gender(runtime: Runtime) -> None:
    runtime.catalog.push(spec_from_data(_spec("loan", "testing:fair")))
    terms = {"gender": [["he", "she"], ["his", "her"]]}
    _, report = asyncio.run(
        run_fairness(runtime, "loan", "loans", terms, metric="exact", evaluators=["exact"])
    )
    gender = report["attributes"]["gender"]
    assert gender["flips"] == 0 and gender["flip_rate"]["high"] < 0.2
    assert gender["variants"][1]["versus_variant_0"]["p_value"] == 1.0
