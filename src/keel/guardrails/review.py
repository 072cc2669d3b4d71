"""The review gate: holds an answer for a human when a rule asks for it or confidence is low."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.trace import get_current_span

from keel.core.guardrail_policy import ReviewPolicy
from keel.guardrails.stage import run_guard
from keel.pipeline.steps import HELD_FOR_REVIEW as REVIEW_ID
from keel.pipeline.steps import RunState


@dataclass(frozen=True, slots=True)
class HeldAnswer:
    """What the review queue stores for one held answer."""

    id: str
    pipeline: str
    pipeline_version: str
    trace_id: str
    request_id: str
    reasons: list[str]
    result: dict[str, Any]
    created_at: datetime
    deadline: datetime
    default_action: str
    webhook: str | None


def reasons_to_hold(state: RunState, policy: ReviewPolicy) -> list[str]:
    reasons = [f"rule:{rule}" for rule in run_guard(state).review]
    floor = policy.below_confidence
    decision = state.decision
    if floor is not None and decision is not None:
        confidence = decision.confidence
        if confidence is None or confidence < floor:
            reasons.append(f"confidence:{confidence if confidence is not None else 'none'}<{floor}")
    return reasons


def held_result(state: RunState) -> dict[str, Any]:
    response = state.response
    return {
        "output": state.output,
        "decision": state.decision.to_dict() if state.decision else None,
        "text": response.text if response else "",
        "model": state.model_id,
        "model_version": response.model if response else None,
    }


@dataclass(slots=True)  # not frozen: Stage declares plain attributes
class ReviewGate:
    policy: ReviewPolicy
    hold: Callable[[HeldAnswer], None]
    name: str = "review_gate"
    layer: str = "review"

    async def __call__(self, state: RunState) -> None:
        reasons = reasons_to_hold(state, self.policy)
        span = get_current_span(state.parent)
        if not reasons:
            span.set_attribute("keel.review.held", False)
            return
        trace_id = format(span.get_span_context().trace_id, "032x")
        now = datetime.now(UTC)
        held = HeldAnswer(
            id=uuid.uuid4().hex,
            pipeline=state.compiled.name,
            pipeline_version=state.compiled.version,
            trace_id=trace_id,
            request_id=state.context.correlation_id or trace_id,
            reasons=reasons,
            result=held_result(state),
            created_at=now,
            deadline=now + timedelta(seconds=self.policy.timeout_s),
            default_action=self.policy.default_action,
            webhook=self.policy.webhook,
        )
        self.hold(held)
        state.attributes[REVIEW_ID] = held.id
        span.set_attribute("keel.review.held", True)
        span.set_attribute(REVIEW_ID, held.id)
        span.set_attribute("keel.review.reasons", reasons)
