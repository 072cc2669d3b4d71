"""The rollout controller: judges each progressing canary and acts on it, on its own.

Each round (``deploy.controller_seconds``), for every progressing deployment:

* **canary**: gather what each arm answered since the current step started (and the paired
  scores of mirrored requests), ask the judge for a verdict and the rollout policy for the
  next action, and apply it: wait, advance to the next weight, hold, promote or roll back.
  Every action but a plain wait is stored with its evidence (the judge's per-metric table,
  the action and the observation counts); the rollout state rides along in the deployment.
* **ab**: compute the A/B report; promote only when its test is valid under repeated looks
  (``safe_to_promote``) and it names the candidate. Nothing else moves by itself.

Shadow and blue-green deployments are never moved by the controller; ``report`` serves
their comparison (and the others') to ``GET /api/deployments/{name}/report``.

Every replica may run the controller: each transition is a conditional update on the
deployment's revision, so of two replicas deciding at once one wins, and the other's
update is refused and skipped.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import UTC, datetime
from typing import Any

from keel.core.errors import ConflictError
from keel.deploy import model
from keel.deploy.judge import (
    ArmObservations,
    JudgePolicy,
    RolloutAction,
    RolloutPolicy,
    RolloutState,
    ab_report,
    default_policy,
    judge,
    next_action,
)
from keel.deploy.model import Deployment, State, Strategy
from keel.deploy.observe import ArmSample, Observed, gather
from keel.deploy.service import DeploymentService
from keel.settings import DeploySettings
from keel.store import Store

log = logging.getLogger("keel.deploy.controller")
ACTOR = "controller"
_ALWAYS_OBSERVED = frozenset(
    {"latency_ms", "ttft_ms", "error", "guardrail_violation", "feedback_negative"}
)
_WHEN_PRESENT = frozenset({"ttft_ms"})  # judged when streamed requests recorded it
_EVENT = {"advance": "advanced", "hold": "held", "promote": "promoted", "rollback": "rolled_back"}


def judge_policy(deployment: Deployment, min_samples: int) -> JudgePolicy:
    """The default judge, limited to what a deployment's traffic can show: time to first
    token exists only for streamed requests and thumbs feedback only when users give it
    (neither is required: no data there never fails a check, data there is judged), and
    paired eval scores exist only when an evaluator scores mirrored requests."""
    observed = set(_ALWAYS_OBSERVED) | ({"eval_score"} if deployment.evaluator else set())
    base = default_policy()
    metrics = tuple(
        dataclasses.replace(
            m, min_samples=min_samples, required=m.required and m.name not in _WHEN_PRESENT
        )
        for m in base.metrics
        if m.name in observed
    )
    return dataclasses.replace(base, metrics=metrics)


def rollout_policy(deployment: Deployment, settings: DeploySettings) -> RolloutPolicy:
    min_samples = deployment.min_samples or settings.min_samples
    return RolloutPolicy(
        steps=tuple(round(s) for s in deployment.steps),
        interval_s=deployment.interval_s,
        min_samples=min_samples,
        judge=judge_policy(deployment, min_samples),
    )


def rollout_state(deployment: Deployment) -> RolloutState:
    """The stored rollout state; a step restarted by hand (resume, weights) starts afresh."""
    started = deployment.step_started_at.timestamp()
    stored = deployment.extra.get("rollout")
    if stored is None:
        return RolloutState(
            step_index=deployment.step_index, started_at=started, step_started_at=started
        )
    state = RolloutState.from_dict(stored)
    if started > state.step_started_at + 1e-3:
        state = dataclasses.replace(
            state, step_started_at=started, last_check_at=None, passes_in_step=0
        )
    return state


def arm(sample: ArmSample) -> ArmObservations:
    return ArmObservations(sample.continuous(), sample.events(), requests=sample.total)


class RolloutController:
    def __init__(self, store: Store, service: DeploymentService, settings: DeploySettings) -> None:
        self._store = store
        self._service = service
        self._settings = settings

    def run_once(self) -> list[str]:
        """One round over every progressing deployment; returns what was done."""
        done = []
        for deployment in self._store.deployments.all_active():
            if deployment.state != State.PROGRESSING:
                continue
            try:
                if deployment.strategy == Strategy.CANARY:
                    done.append(self._canary(deployment))
                elif deployment.strategy == Strategy.AB:
                    done.append(self._ab(deployment))
            except ConflictError as exc:  # another replica or a person moved it first
                log.info("deployment %s changed meanwhile: %s", deployment.id, exc.message)
        return done

    def observe(self, deployment: Deployment, since: datetime) -> Observed:
        repo = self._store.deployments
        return gather(
            repo.outcomes(deployment, since),
            repo.pairs(deployment.id, since),
            shadow=deployment.strategy == Strategy.SHADOW,
        )

    def report(self, deployment: Deployment) -> dict[str, Any]:
        """The current comparison: the A/B report for ab, the judgement otherwise."""
        observed = self.observe(deployment, deployment.step_started_at)
        body: dict[str, Any] = {"deployment": deployment.to_dict(), "observed": _counts(observed)}
        if deployment.strategy == Strategy.AB:
            return body | {"ab": self._ab_report(deployment, observed).to_dict()}
        policy = rollout_policy(deployment, self._settings)
        judgement = judge(
            policy.judge, arm(observed.baseline), arm(observed.candidate), observed.paired()
        )
        return body | {"judgement": judgement.to_dict()}

    def _canary(self, deployment: Deployment) -> str:
        policy = rollout_policy(deployment, self._settings)
        state = rollout_state(deployment)
        since = datetime.fromtimestamp(state.step_started_at, UTC)
        observed = self.observe(deployment, since)
        judgement = judge(
            policy.judge, arm(observed.baseline), arm(observed.candidate), observed.paired()
        )
        action = next_action(policy, state, judgement, time.time())
        evidence = {
            "judgement": judgement.to_dict(),
            "action": action.to_dict(),
            "observed": _counts(observed),
        }
        self._apply(deployment, state, action, evidence)
        return f"{deployment.pipeline}: {action.kind}"

    def _apply(
        self, d: Deployment, state: RolloutState, action: RolloutAction, evidence: dict[str, Any]
    ) -> None:
        now = datetime.now(UTC)
        extra = d.extra | {"rollout": action.state.to_dict()}
        if action.kind == "promote":
            after = dataclasses.replace(model.promote(d, now, action.reason), extra=extra)
            self._service.apply(d, after, ACTOR, "promoted", evidence, production=d.candidate)
            return
        if action.kind == "rollback":
            after = dataclasses.replace(model.roll_back(d, now, action.reason), extra=extra)
            self._service.apply(d, after, ACTOR, "rolled_back", evidence)
            return
        if action.kind == "wait" and action.state == state:
            return  # nothing learnt: no write, no history
        changes: dict[str, Any] = {"extra": extra, "failed_checks": action.state.checks_failed}
        if action.kind == "advance":
            changes |= {
                "step_index": action.state.step_index,
                "step_started_at": datetime.fromtimestamp(action.state.step_started_at, UTC),
            }
        weights = model.split_weights(d.candidate, d.stable, action.weight)
        after = model.reweigh(d, now, weights, action.reason, **changes)
        if action.kind == "wait":  # rollout bookkeeping only (e.g. a pass counted)
            self._service.apply(d, after, ACTOR, "checked", evidence, record=False)
            return
        self._service.apply(d, after, ACTOR, _EVENT[action.kind], evidence)

    def _ab_report(self, deployment: Deployment, observed: Observed) -> Any:
        arms = {"stable": arm(observed.baseline), "candidate": arm(observed.candidate)}
        split = {
            "stable": deployment.weights.get(deployment.stable, 0.0),
            "candidate": deployment.candidate_weight,
        }
        policy = judge_policy(deployment, deployment.min_samples or self._settings.min_samples)
        return ab_report(arms, split, policy)

    def _ab(self, deployment: Deployment) -> str:
        observed = self.observe(deployment, deployment.step_started_at)
        report = self._ab_report(deployment, observed)
        if not (report.safe_to_promote and report.promote_arm == "candidate"):
            return f"{deployment.pipeline}: ab continues ({report.recommendation})"
        reason = f"A/B: {report.recommendation}"
        evidence = {"ab": report.to_dict(), "observed": _counts(observed)}
        self._service.promote(deployment.pipeline, ACTOR, reason, evidence)
        return f"{deployment.pipeline}: promoted"


def _counts(observed: Observed) -> dict[str, Any]:
    return {
        "stable": observed.baseline.summary(),
        "candidate": observed.candidate.summary(),
        "paired_scores": len(observed.eval_score),
    }
