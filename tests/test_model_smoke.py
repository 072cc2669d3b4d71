"""End to end on the real bundled model: the README's promise, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .cli_runner import keel
from .conftest import EXAMPLES

# the bundled model generates on the CPU; on a busy 2-core machine a run can pass two minutes
pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.timeout(600)]


def test_support_triage_on_the_bundled_model(keel_home: Path) -> None:
    code, _, err = keel("pipelines", "push", str(EXAMPLES / "support-triage"))
    assert code == 0, err
    ticket = {"subject": "Charged twice", "body": "My card was billed two times for one order."}
    code, out, err = keel("run", "support-triage", "--input", json.dumps(ticket), "--json")
    assert code == 0, err
    result = json.loads(out)
    decisions = {
        "queue:billing",
        "queue:tech-support",
        "queue:accounts",
        "queue:general",
        "queue:human-triage",
    }
    assert result["decision"]["decision"] in decisions
    assert result["model"] == "local:smollm2"
    assert result["usage"]["input_tokens"] > 50
    assert result["usage"]["output_tokens"] > 0
    assert result["model_version"]  # what llama.cpp reports it ran

    code, out, err = keel("traces", "show", result["trace_id"], "--json")
    assert code == 0, err
    spans = json.loads(out)["spans"]
    layers = {s["layer"]: s for s in spans}
    assert {"preprocess", "prompt", "model", "postprocess"} <= set(layers)
    for layer in ("preprocess", "prompt", "model", "postprocess"):
        assert layers[layer]["input"] is not None
        assert layers[layer]["output"] is not None
    model = layers["model"]
    assert model["input_tokens"] == result["usage"]["input_tokens"]
    # the profile counted the prompt with the model's own tokenizer before the call
    assert model["attributes"]["keel.prompt_tokens_estimate"] == model["input_tokens"]
    assert model["duration_ms"] > 0
