"""A canary round: each candidate's verdict and next action, combined into one move.

Every live candidate has its own rollout state and is judged against stable on its own,
over its own step's window. The candidates share the steps: with ``k`` candidates (all
those the deployment started with), a candidate at step weight ``w`` serves ``w / k`` % of
traffic, so stable always keeps at least ``100 - w``. With one candidate this is the plain
canary. The policy for several:

* a candidate whose check rolls back is retired on its own: its weight returns to stable
  and the others carry on; when the last one is rolled back the deployment is;
* a candidate ready to promote (it passed its last step) is promoted only when it is the
  single live candidate left. While others are still in the running it stays at its step
  and is still judged each check (a later failure still rolls it back); the first time a
  set of candidates is ready the deployment records it (``awaiting_choice``), so a person
  can pick one with ``keel deploy promote NAME VERSION``;
* otherwise each advances, holds or waits as the one-candidate rollout does.

Pure: the controller gathers the observations and stores the returned move.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from keel.deploy import model
from keel.deploy.judge import Judgement, RolloutAction, RolloutState
from keel.deploy.model import Deployment


@dataclass(frozen=True, slots=True)
class Decision:
    """One candidate's check: its state before, the verdict and the rollout action."""

    version: str
    state: RolloutState
    judgement: Judgement
    action: RolloutAction
    observed: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Move:
    """The deployment after the round, and how to record it."""

    after: Deployment
    action: str  # the history event
    evidence: dict[str, Any]
    production: str | None = None
    record: bool = True

    @property
    def summary(self) -> str:
        return self.action


def evidence_of(lead: Decision, decisions: Sequence[Decision], several: bool) -> dict[str, Any]:
    evidence: dict[str, Any] = {
        "judgement": lead.judgement.to_dict(),
        "action": lead.action.to_dict(),
        "observed": lead.observed,
    }
    if several:
        evidence["candidate"] = lead.version
        evidence["candidates"] = {
            x.version: {"judgement": x.judgement.to_dict(), "action": x.action.to_dict()}
            for x in decisions
        }
    return evidence


def _reason(lead: Decision, several: bool) -> str:
    return f"{lead.version[:12]}: {lead.action.reason}" if several else lead.action.reason


def _event(decisions: Sequence[Decision], ready: list[str], before: Any) -> str | None:
    kinds = {x.action.kind for x in decisions}
    if "rollback" in kinds:
        return "candidate_rolled_back"
    if "advance" in kinds:
        return "advanced"
    if "hold" in kinds:
        return "held"
    if ready and ready != before:
        return "awaiting_choice"
    if all(x.action.kind == "wait" and x.action.state == x.state for x in decisions):
        return None  # nothing learnt: no write, no history
    return "checked"


def decide(deployment: Deployment, decisions: Sequence[Decision]) -> Move | None:
    """Combine the live candidates' actions into one transition (None: nothing to store)."""
    if not decisions:
        return None
    now = datetime.now(UTC)
    several = len(deployment.candidates) > 1
    failed = [x for x in decisions if x.action.kind == "rollback"]
    alive = [x for x in decisions if x.action.kind != "rollback"]
    ready = [x for x in alive if x.action.kind == "promote"]
    rollouts = dict(deployment.extra.get("rollouts", {}))
    for x in decisions:
        waiting = x.action.kind == "promote" and len(alive) > 1
        state = replace(x.action.state, status="progressing") if waiting else x.action.state
        rollouts[x.version] = state.to_dict()
    ready_versions = sorted(x.version for x in ready) if len(alive) > 1 else []
    extra = {k: v for k, v in deployment.extra.items() if k not in ("rollout", "ready")}
    extra |= {"rollouts": rollouts} | ({"ready": ready_versions} if ready_versions else {})
    retired = (*deployment.retired, *(x.version for x in failed))
    base = replace(deployment, extra=extra, retired=retired)
    if len(alive) == 1 and ready:  # the single winner: the others were rolled back
        winner = ready[0]
        after = model.promote(base, now, _reason(winner, several), winner.version)
        evidence = evidence_of(winner, decisions, several)
        return Move(after, "promoted", evidence, production=winner.version)
    lead = (failed or ready or [x for x in alive if x.action.kind != "wait"] or alive)[0]
    evidence = evidence_of(lead, decisions, several)
    if not alive:
        after = model.roll_back(base, now, _reason(lead, several))
        return Move(after, "rolled_back", evidence)
    action = _event(decisions, ready_versions, deployment.extra.get("ready"))
    if action is None:
        return None
    share = len(deployment.candidates)
    weights = dict.fromkeys(deployment.candidates, 0.0)
    for x in alive:
        weights[x.version] = deployment.steps[x.action.state.step_index] / share
    weights[deployment.stable] = 100.0 - sum(weights.values())
    reason = _reason(lead, several)
    if action == "awaiting_choice":
        shown = ", ".join(v[:12] for v in ready_versions)
        reason = (
            f"{shown} passed the last step; other candidates are still in the running: "
            f"promote one with `keel deploy promote {deployment.pipeline} VERSION`"
        )
    after = model.reweigh(
        base,
        now,
        weights,
        reason,
        failed_checks=max(x.action.state.checks_failed for x in alive),
        step_index=min(x.action.state.step_index for x in alive),
        step_started_at=datetime.fromtimestamp(
            min(x.action.state.step_started_at for x in alive), UTC
        ),
    )
    return Move(after, action, evidence, record=action != "checked")
