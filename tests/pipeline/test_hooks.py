"""Extension points: stages plug in between layers, each as its own span, and may stop a run."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.trace import StatusCode

from keel.core.errors import InvalidInputError
from keel.pipeline.runner import Runner
from keel.pipeline.steps import RunHooks, RunState

from .helpers import Harness, compile_spec, triage_spec

TICKET = {"subject": "Refund", "body": "I was charged twice"}


class Redact:
    name = "redact_digits"
    layer = "guardrail"

    async def __call__(self, state: RunState) -> None:
        state.input = {
            k: "".join("#" if c.isdigit() else c for c in v) for k, v in state.input.items()
        }


class Block:
    name = "block_everything"
    layer = "guardrail"

    async def __call__(self, state: RunState) -> None:
        raise InvalidInputError("blocked by policy", code="guardrail_blocked")


class Retrieve:
    name = "retrieve"
    layer = "retrieval"

    async def __call__(self, state: RunState) -> None:
        state.variables["text"] += " [context: refunds take 5 days]"


def harness_with(hooks: RunHooks) -> Harness:
    harness = Harness()
    harness.runner = Runner(
        harness.registry,
        harness.tracer_provider.get_tracer("t"),
        default_model="testing:echo",
        hooks=hooks,
    )
    return harness


def test_stages_run_in_order_as_their_own_spans() -> None:
    harness = harness_with(RunHooks(before_preprocess=[Redact()], before_render=[Retrieve()]))
    data = {"subject": "Order 123", "body": "card 4242"}
    asyncio.run(harness.runner.run(compile_spec(triage_spec()), data))
    names = [s.name for s in sorted(harness.spans(), key=lambda s: s.start_time)]
    assert names[1:5] == ["redact_digits", "preprocess", "retrieve", "render_prompt"]
    prompt = harness.by_layer()["prompt"].attributes["keel.output"]
    assert "Order ###" in prompt and "card ####" in prompt
    assert "refunds take 5 days" in prompt


def test_a_stage_can_stop_the_run_before_the_model() -> None:
    harness = harness_with(RunHooks(before_preprocess=[Block()]))
    with pytest.raises(InvalidInputError) as info:
        asyncio.run(harness.runner.run(compile_spec(triage_spec()), TICKET))
    assert info.value.code == "guardrail_blocked"
    layers = harness.by_layer()
    assert layers["guardrail"].status.status_code is StatusCode.ERROR
    assert "model" not in layers


class PerPipeline:
    """A plugin contributing a stage only to pipelines whose thresholds ask for it."""

    def __init__(self) -> None:
        self.built: list[str] = []

    def hooks_for(self, compiled):  # type: ignore[no-untyped-def]
        self.built.append(compiled.version)
        if "redact" in compiled.spec.thresholds:
            return RunHooks(before_preprocess=[Redact()])
        return RunHooks()


def test_plugins_contribute_stages_per_version_built_once() -> None:
    plugin = PerPipeline()
    harness = Harness()
    harness.runner = Runner(
        harness.registry,
        harness.tracer_provider.get_tracer("t"),
        default_model="testing:echo",
        plugins=[plugin],
    )
    with_stage = compile_spec(triage_spec(thresholds={"redact": 1}))
    without = compile_spec(triage_spec())
    for compiled in (with_stage, with_stage, without):
        asyncio.run(harness.runner.run(compiled, {"subject": "a1", "body": "b2"}))
    assert plugin.built == [with_stage.version, without.version]
    assert [s.name for s in harness.spans()].count("redact_digits") == 2


class NestedScan:
    name = "scan"
    layer = "guardrail"

    async def __call__(self, state: RunState) -> None:
        assert state.spans is not None and state.parent is not None
        with state.spans.layer("scan pii", "guardrail.scanner", state.parent):
            pass


def test_stages_can_open_child_spans() -> None:
    harness = harness_with(RunHooks(before_preprocess=[NestedScan()]))
    asyncio.run(harness.runner.run(compile_spec(triage_spec()), TICKET))
    spans = {s.name: s for s in harness.spans()}
    assert spans["scan pii"].parent.span_id == spans["scan"].context.span_id
