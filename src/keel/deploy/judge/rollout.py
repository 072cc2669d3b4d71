"""The canary rollout as a pure state machine: given a judgement, what to do next.

The platform keeps a :class:`RolloutState` in its store, judges the canary's observations
since the current step started, and asks :func:`next_action` what to do. The answer is one
of ``wait``, ``advance`` (to the next weight), ``promote`` (to 100 %), ``hold`` (stay, a
failed check was spent) or ``rollback`` (to 0 %), with the new state to store.

Evidence is asymmetric, stricter to promote than to roll back:

* FAIL rolls back at once, at any step, even before the check interval is over;
* MARGINAL holds the weight and spends one check of ``failed_check_budget``; the check
  that overdraws the budget rolls back;
* PASS advances only when a check is due (a full interval since the step started or the
  last check) and the canary has ``min_samples`` requests in the step;
* promotion needs ``promote_checks`` consecutive PASS checks at the last judged step and
  every capped proportion *shown* within its cap (interval upper bound under the cap). A
  PASS whose caps are not yet shown holds and spends the budget: a canary that cannot be
  shown safe is eventually rolled back, never promoted;
* NODATA (too few observations) waits without cost for ``max_nodata_checks`` consecutive
  checks; after that each further NODATA check holds and spends the budget, so a canary
  that never produces judgeable data ends rolled back rather than silently promoted.

Weights of 100 in ``steps`` are never judged (there is no baseline traffic left to compare
with); passing the last step below 100 promotes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any, Literal

from keel.core.errors import InvalidInputError
from keel.deploy.judge.spec import POLICY_ERROR, JudgePolicy, default_policy
from keel.deploy.judge.verdict import Judgement, Verdict

ActionKind = Literal["wait", "advance", "promote", "hold", "rollback"]
Status = Literal["progressing", "promoted", "rolled_back"]
STATUSES: tuple[str, ...] = ("progressing", "promoted", "rolled_back")


@dataclass(frozen=True, slots=True)
class RolloutPolicy:
    """Weight steps (percent of traffic to the canary), check cadence and budgets."""

    steps: tuple[int, ...] = (5, 25, 50, 100)
    interval_s: float = 600.0
    min_samples: int = 50
    failed_check_budget: int = 2
    judge: JudgePolicy = field(default_factory=default_policy)
    promote_checks: int = 2
    max_nodata_checks: int = 3
    stage: str | None = None  # how reasons name the step (None: "at W %"), e.g. "in shadow"

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(int(s) for s in self.steps))
        problem = self._problem()
        if problem:
            raise InvalidInputError(problem, code=POLICY_ERROR)

    def _problem(self) -> str | None:
        steps = self.steps
        if not steps or any(not 0 < s <= 100 for s in steps):
            return "steps must be canary weights in percent, each in (0, 100], e.g. 5,25,50,100"
        if any(b <= a for a, b in pairwise(steps)):
            return "steps must increase strictly, e.g. 5,25,50,100"
        if steps[0] == 100:
            return "a canary needs at least one step below 100 %; use blue-green to switch at once"
        if not (math.isfinite(self.interval_s) and self.interval_s > 0):
            return "interval_s must be a positive number of seconds"
        if self.min_samples < 0 or self.failed_check_budget < 0 or self.max_nodata_checks < 0:
            return "min_samples, failed_check_budget and max_nodata_checks must be >= 0"
        if self.promote_checks < 1:
            return "promote_checks must be at least 1"
        return None

    @property
    def last_judged_index(self) -> int:
        """Index of the last step below 100 %: passing it promotes."""
        return sum(1 for s in self.steps if s < 100) - 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": list(self.steps),
            "interval_s": self.interval_s,
            "min_samples": self.min_samples,
            "failed_check_budget": self.failed_check_budget,
            "promote_checks": self.promote_checks,
            "max_nodata_checks": self.max_nodata_checks,
            "judge": self.judge.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class RolloutState:
    """Where a rollout stands; store it between checks (``to_dict``/``from_dict``)."""

    step_index: int = 0
    checks_failed: int = 0
    started_at: float = 0.0
    step_started_at: float = 0.0
    last_check_at: float | None = None
    passes_in_step: int = 0
    nodata_streak: int = 0
    checks: int = 0
    status: Status = "progressing"

    @classmethod
    def start(cls, now: float) -> RolloutState:
        return cls(started_at=now, step_started_at=now)

    @property
    def finished(self) -> bool:
        return self.status != "progressing"

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_index": self.step_index,
            "checks_failed": self.checks_failed,
            "started_at": self.started_at,
            "step_started_at": self.step_started_at,
            "last_check_at": self.last_check_at,
            "passes_in_step": self.passes_in_step,
            "nodata_streak": self.nodata_streak,
            "checks": self.checks,
            "status": self.status,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RolloutState:
        status = data.get("status", "progressing")
        if status not in STATUSES:
            raise InvalidInputError(f"unknown rollout status {status!r}", code=POLICY_ERROR)
        last = data.get("last_check_at")
        return cls(
            step_index=int(data["step_index"]),
            checks_failed=int(data.get("checks_failed", 0)),
            started_at=float(data["started_at"]),
            step_started_at=float(data["step_started_at"]),
            last_check_at=None if last is None else float(last),
            passes_in_step=int(data.get("passes_in_step", 0)),
            nodata_streak=int(data.get("nodata_streak", 0)),
            checks=int(data.get("checks", 0)),
            status=status,
        )


@dataclass(frozen=True, slots=True)
class RolloutAction:
    """What to do now: the kind, the canary weight to apply, why, and the state to store."""

    kind: ActionKind
    weight: int
    reason: str
    state: RolloutState

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "weight": self.weight,
            "reason": self.reason,
            "state": self.state.to_dict(),
        }


def next_check_at(policy: RolloutPolicy, state: RolloutState) -> float:
    """When the next check is due: one interval after the step started or the last check."""
    since = state.step_started_at
    if state.last_check_at is not None:
        since = max(since, state.last_check_at)
    return since + policy.interval_s


def check_due(policy: RolloutPolicy, state: RolloutState, now: float) -> bool:
    return not state.finished and now >= next_check_at(policy, state)


def _current_weight(policy: RolloutPolicy, state: RolloutState) -> int:
    return policy.steps[state.step_index]


def _at(policy: RolloutPolicy, state: RolloutState) -> str:
    return policy.stage or f"at {_current_weight(policy, state)} %"


def _spend(policy: RolloutPolicy, state: RolloutState, why: str, **changes: Any) -> RolloutAction:
    """Spend one failed check: hold, or roll back once the budget is overdrawn."""
    failed = state.checks_failed + 1
    new = replace(state, checks_failed=failed, passes_in_step=0, **changes)
    budget = policy.failed_check_budget
    if failed > budget:
        reason = f"{why}; failed-check budget of {budget} exhausted"
        return RolloutAction("rollback", 0, reason, replace(new, status="rolled_back"))
    reason = f"{why}; holding ({failed} of {budget} failed checks spent)"
    return RolloutAction("hold", _current_weight(policy, state), reason, new)


def _on_nodata(policy: RolloutPolicy, state: RolloutState, why: str) -> RolloutAction:
    streak = state.nodata_streak + 1
    if streak <= policy.max_nodata_checks:
        reason = f"waiting for data ({streak} of {policy.max_nodata_checks} checks): {why}"
        new = replace(state, nodata_streak=streak)
        return RolloutAction("wait", _current_weight(policy, state), reason, new)
    return _spend(
        policy, state, f"still no data after {streak} checks: {why}", nodata_streak=streak
    )


def _promotion_blockers(judgement: Judgement) -> list[str]:
    return [
        f"{m.name} not shown within its cap" for m in judgement.metrics if m.cap_confirmed is False
    ]


def _on_pass(
    policy: RolloutPolicy, state: RolloutState, judgement: Judgement, now: float
) -> RolloutAction:
    state = replace(state, nodata_streak=0)
    weight = _current_weight(policy, state)
    if state.step_index < policy.last_judged_index:
        nxt = state.step_index + 1
        new = replace(state, step_index=nxt, step_started_at=now, passes_in_step=0)
        where = _at(policy, state)
        reason = f"passed {where} ({judgement.reason}); advancing to {policy.steps[nxt]} %"
        return RolloutAction("advance", policy.steps[nxt], reason, new)
    unseen = [m.name for m in judgement.metrics if m.required and not m.counted]
    if unseen:
        # steps may climb on the metrics that have data, but the last move is made only
        # with evidence on every required one (a configured evaluator's paired score too)
        return _on_nodata(policy, state, f"no data yet to promote on: {', '.join(unseen)}")
    blockers = _promotion_blockers(judgement)
    if blockers:
        return _spend(policy, state, f"passed but cannot promote: {'; '.join(blockers)}")
    passes = state.passes_in_step + 1
    if passes >= policy.promote_checks:
        new = replace(state, passes_in_step=passes, status="promoted")
        where = _at(policy, state)
        reason = f"passed {passes} consecutive checks {where} ({judgement.reason}); promoting"
        return RolloutAction("promote", 100, reason, new)
    need = policy.promote_checks
    reason = f"passed {passes} of {need} checks needed to promote {_at(policy, state)}"
    return RolloutAction("wait", weight, reason, replace(state, passes_in_step=passes))


def next_action(
    policy: RolloutPolicy, state: RolloutState, judgement: Judgement | None, now: float
) -> RolloutAction:
    """Decide the rollout's next move from the latest judgement (None: nothing judged)."""
    if state.finished:
        raise InvalidInputError(
            f"the rollout is already {state.status.replace('_', ' ')}", code="deploy_finished"
        )
    if not 0 <= state.step_index <= policy.last_judged_index:
        raise InvalidInputError(
            "state.step_index does not fit the policy's steps", code=POLICY_ERROR
        )
    weight = _current_weight(policy, state)
    if judgement is not None and judgement.verdict is Verdict.FAIL:
        new = replace(state, checks=state.checks + 1, last_check_at=now, status="rolled_back")
        why = f"failed {_at(policy, state)}: {judgement.reason}"
        return RolloutAction("rollback", 0, why, new)
    if judgement is None or not check_due(policy, state, now):
        due = next_check_at(policy, state)
        why = "no judgement" if judgement is None else "judgement ignored before the check is due"
        return RolloutAction("wait", weight, f"{why}; next check at t={due:.0f}", state)
    state = replace(state, checks=state.checks + 1, last_check_at=now)
    if judgement.verdict is Verdict.NODATA:
        return _on_nodata(policy, state, judgement.reason)
    if judgement.n_canary < policy.min_samples:
        why = f"{judgement.n_canary} canary requests in this step, {policy.min_samples} needed"
        return _on_nodata(policy, state, why)
    if judgement.verdict is Verdict.MARGINAL:
        why = f"marginal {_at(policy, state)}: {judgement.reason}"
        return _spend(policy, state, why, nodata_streak=0)
    return _on_pass(policy, state, judgement, now)
