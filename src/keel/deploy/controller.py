"""The rollout controller: judges each progressing canary and acts on it, on its own.

Each round (``deploy.controller_seconds``), for every progressing deployment:

* **canary**: for each candidate still in the running, gather what it and stable answered
  since the candidate's current step started (and the paired scores of its mirrored
  requests), ask the judge for a verdict and the rollout policy for the next action, and
  apply them together (see :mod:`keel.deploy.canary`): wait, advance, hold, roll a
  candidate back, or promote the single winner. Every action but a plain wait is stored
  with its evidence (the judge's per-metric table, the action and the observation
  counts); each candidate's rollout state rides along in the deployment.
* **shadow**: judge each live candidate's mirrored runs against stable with the same judge
  and rollout rules, at one step (see :mod:`keel.deploy.shadow_round`): roll a failing
  candidate back (it is no longer mirrored), record a passing one as ready, and with
  ``then="canary"`` turn the deployment into a canary of the ready candidates.
* **ab**: compute the A/B report over every arm; promote only when its test is valid under
  repeated looks (``safe_to_promote``, Holm-corrected across arms) and names an arm.
  Nothing else moves by itself.

Blue-green deployments are never moved by the controller (see docs/deployments.md for
why no automatic switch-back); ``report`` serves every comparison to
``GET /api/deployments/{name}/report``.

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
from keel.deploy.canary import Decision, Move, decide
from keel.deploy.experiment import ab_for, ab_report_of, arm, arm_version
from keel.deploy.judge import (
    JudgePolicy,
    RolloutPolicy,
    RolloutState,
    default_policy,
    judge,
    next_action,
)
from keel.deploy.model import Deployment, State, Strategy
from keel.deploy.observe import Observed, gather
from keel.deploy.service import DeploymentService
from keel.deploy.shadow_round import STAGE, shadow_move
from keel.settings import DeploySettings
from keel.store import Store

log = logging.getLogger("keel.deploy.controller")
ACTOR = "controller"
_ALWAYS_OBSERVED = frozenset(
    {"latency_ms", "ttft_ms", "error", "guardrail_violation", "feedback_negative"}
)
_WHEN_PRESENT = frozenset({"ttft_ms"})  # judged when streamed requests recorded it


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


def shadow_policy(deployment: Deployment, settings: DeploySettings) -> RolloutPolicy:
    """The canary's rules at a single step: the shadow. Its check interval is the
    deployment's ``interval``; passing ``promote_checks`` checks in a row makes a
    candidate ready. (Its one step's weight is nominal: no primary traffic moves.)"""
    policy = rollout_policy(deployment, settings)
    return dataclasses.replace(policy, steps=(1,), stage=STAGE)


def rollout_state(deployment: Deployment, version: str | None = None) -> RolloutState:
    """A candidate's stored rollout state (the first candidate's by default); a step
    restarted by hand (resume, weights) starts afresh. Deployments stored before several
    candidates kept the single candidate's state under ``extra["rollout"]``."""
    version = version or deployment.candidate
    started = deployment.step_started_at.timestamp()
    stored = deployment.extra.get("rollouts", {}).get(version)
    if stored is None and version == deployment.candidate:
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
                elif deployment.strategy == Strategy.SHADOW:
                    done.append(self._shadow(deployment))
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
            deployment.candidates,
            shadow=deployment.strategy == Strategy.SHADOW,
        )

    def report(self, deployment: Deployment) -> dict[str, Any]:
        """The current comparison: the A/B report for ab, the judgement otherwise (per
        candidate under ``candidates``; ``judgement`` is the first candidate's)."""
        observed = self.observe(deployment, deployment.step_started_at)
        body: dict[str, Any] = {"deployment": deployment.to_dict(), "observed": _counts(observed)}
        if deployment.strategy == Strategy.AB:
            return body | {"ab": ab_for(deployment, observed, self._judge_policy(deployment))}
        policy = rollout_policy(deployment, self._settings)
        judgements = {
            version: judge(
                policy.judge,
                arm(observed.baseline),
                arm(observed.arms[version]),
                observed.paired(version),
            ).to_dict()
            for version in deployment.candidates
        }
        return body | {
            "judgement": judgements[deployment.candidate],
            "candidates": judgements,
        }

    def _judge_policy(self, deployment: Deployment) -> JudgePolicy:
        return judge_policy(deployment, deployment.min_samples or self._settings.min_samples)

    def decisions(self, deployment: Deployment, policy: RolloutPolicy) -> list[Decision]:
        """Each live candidate judged against stable over its own step's window."""
        now = time.time()
        windows: dict[float, Observed] = {}
        decisions = []
        for version in deployment.live:
            state = rollout_state(deployment, version)
            observed = windows.get(state.step_started_at)
            if observed is None:
                since = datetime.fromtimestamp(state.step_started_at, UTC)
                observed = windows[state.step_started_at] = self.observe(deployment, since)
            decisions.append(decision_of(policy, version, state, observed, now))
        return decisions

    def _canary(self, deployment: Deployment) -> str:
        policy = rollout_policy(deployment, self._settings)
        return self._store_move(deployment, decide(deployment, self.decisions(deployment, policy)))

    def _shadow(self, deployment: Deployment) -> str:
        policy = shadow_policy(deployment, self._settings)
        decisions = self.decisions(deployment, policy)
        return self._store_move(deployment, shadow_move(deployment, decisions, datetime.now(UTC)))

    def _store_move(self, deployment: Deployment, move: Move | None) -> str:
        if move is None:
            return f"{deployment.pipeline}: wait"
        self._service.apply(
            deployment,
            move.after,
            ACTOR,
            move.action,
            move.evidence,
            production=move.production,
            record=move.record,
        )
        return f"{deployment.pipeline}: {move.summary}"

    def _ab(self, deployment: Deployment) -> str:
        observed = self.observe(deployment, deployment.step_started_at)
        report = ab_report_of(deployment, observed, self._judge_policy(deployment))
        if report is None or not (report.safe_to_promote and report.promote_arm):
            why = report.recommendation if report else "fewer than two arms carry traffic"
            return f"{deployment.pipeline}: ab continues ({why})"
        winner = arm_version(deployment, report.promote_arm)
        reason = f"A/B: {report.recommendation}"
        evidence = {"ab": report.to_dict(), "observed": _counts(observed)}
        self._service.promote(deployment.pipeline, ACTOR, reason, evidence, version=winner)
        return f"{deployment.pipeline}: promoted {winner[:12]}"


def decision_of(
    policy: RolloutPolicy, version: str, state: RolloutState, observed: Observed, now: float
) -> Decision:
    """One candidate's check: the judge's verdict on its window and the rollout's action."""
    judgement = judge(
        policy.judge, arm(observed.baseline), arm(observed.arms[version]), observed.paired(version)
    )
    action = next_action(policy, state, judgement, now)
    return Decision(version, state, judgement, action, _counts(observed))


def _counts(observed: Observed) -> dict[str, Any]:
    return {
        "stable": observed.baseline.summary(),
        "candidate": observed.candidate.summary(),
        "candidates": {
            version: sample.summary() | {"paired_scores": len(observed.eval_scores[version])}
            for version, sample in observed.arms.items()
        },
        "paired_scores": sum(len(scores) for scores in observed.eval_scores.values()),
    }
