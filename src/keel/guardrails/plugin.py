"""``GuardrailPlugin``: builds a pipeline version's guardrail stages from its policy."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from keel.core.errors import SpecError, TargetRefused
from keel.core.guardrail_policy import GuardrailPolicy, ScannerRule
from keel.guardrails.logging_policy import PolicyFilter, Redactor
from keel.guardrails.registry import build_scanner
from keel.guardrails.review import HeldAnswer, ReviewGate
from keel.guardrails.shared_models import SharedModels
from keel.guardrails.stage import CanaryStage, InputGuard, OutputGuard, Rule
from keel.guardrails.stats import GuardrailStats
from keel.pipeline.compiled import CompiledPipeline
from keel.pipeline.steps import RunHooks
from keel.webhook_target import REVIEW_SETTING, check_url


def build_rules(
    rules: Sequence[ScannerRule], direction: str, models: SharedModels | None = None
) -> tuple[Rule, ...]:
    return tuple(Rule(rule, build_scanner(rule, direction, models)) for rule in rules)


class GuardrailPlugin:
    """A ``StagePlugin``; ``check`` validates a policy at push time (raises ``SpecError``)."""

    def __init__(
        self,
        hold: Callable[[HeldAnswer], None] | None = None,
        *,
        allow_private_webhooks: bool = False,
        models: SharedModels | None = None,
    ) -> None:
        self._hold = hold  # stores a held answer; without one, nothing is ever held
        self._allow_private_webhooks = allow_private_webhooks
        self.stats = GuardrailStats()
        self.models = models or SharedModels()  # loaded once, shared by every version

    def check(self, compiled: CompiledPipeline) -> None:
        webhook = compiled.spec.guardrails.review.webhook
        if webhook is not None:
            try:
                check_url(
                    webhook, allow_private=self._allow_private_webhooks, setting=REVIEW_SETTING
                )
            except TargetRefused as exc:
                raise SpecError(f"guardrails.review: {exc}", code="guardrail_invalid") from exc
        self.hooks_for(compiled)

    def hooks_for(self, compiled: CompiledPipeline) -> RunHooks:
        policy: GuardrailPolicy = compiled.spec.guardrails
        inputs = build_rules(policy.input, "input", self.models)
        outputs = build_rules(policy.output, "output", self.models)
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
