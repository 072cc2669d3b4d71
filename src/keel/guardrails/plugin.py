"""``GuardrailPlugin``: builds a pipeline version's guardrail stages from its policy."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from keel.core.guardrail_policy import GuardrailPolicy, ScannerRule
from keel.guardrails.logging_policy import PolicyFilter, Redactor
from keel.guardrails.registry import build_scanner
from keel.guardrails.review import HeldAnswer, ReviewGate
from keel.guardrails.stage import CanaryStage, InputGuard, OutputGuard, Rule
from keel.guardrails.stats import GuardrailStats
from keel.pipeline.compiled import CompiledPipeline
from keel.pipeline.steps import RunHooks


def build_rules(rules: Sequence[ScannerRule], direction: str) -> tuple[Rule, ...]:
    return tuple(Rule(rule, build_scanner(rule, direction)) for rule in rules)


class GuardrailPlugin:
    """A ``StagePlugin``; ``check`` validates a policy at push time (raises ``SpecError``)."""

    def __init__(self, hold: Callable[[HeldAnswer], None] | None = None) -> None:
        self._hold = hold  # stores a held answer; without one, nothing is ever held
        self.stats = GuardrailStats()

    def check(self, compiled: CompiledPipeline) -> None:
        self.hooks_for(compiled)

    def hooks_for(self, compiled: CompiledPipeline) -> RunHooks:
        policy: GuardrailPolicy = compiled.spec.guardrails
        inputs = build_rules(policy.input, "input")
        outputs = build_rules(policy.output, "output")
        anonymizes = any(r.action == "anonymize" for r in policy.input)
        canary = any(r.scanner == "system_prompt_leakage" for r in policy.output)
        logging = compiled.spec.logging
        return RunHooks(
            payload_filter=None if logging.is_raw else PolicyFilter(logging, Redactor.default()),
            before_preprocess=[InputGuard(inputs, self.stats)] if inputs else [],
            before_generate=[CanaryStage()] if canary else [],
            after_generate=[OutputGuard(outputs, self.stats)] if outputs or anonymizes else [],
            after_postprocess=(
                [ReviewGate(policy.review, self._hold)]
                if self._hold is not None and policy.holds_for_review
                else []
            ),
        )
