"""A shadow round: each live shadow candidate's verdict and action, combined into one move.

A shadow deployment answers every request from stable; its candidates run only on
mirrored requests. The controller judges each live candidate against stable with the
canary's judge and rollout rules at a single step (the shadow), so the same minimum
samples, check interval and failed-check budget apply:

* a candidate whose check rolls back (a FAIL, or a MARGINAL check that overdraws the
  budget, or no judgeable data for too long) is rolled back on its own: it stops being
  mirrored. When none is left the deployment is rolled back;
* a candidate that passes ``promote_checks`` checks in a row is *ready*: recorded once
  (``ready``, with the judge's table as evidence) and still judged each check, so a later
  failure still rolls it back;
* with ``then="canary"``, once every live candidate is ready the deployment becomes a
  canary of them (``canary_started``): primary traffic starts at the first step;
* a marginal check that spends the budget is recorded as ``held``.

Without ``then`` a ready candidate waits for a person: ``keel deploy promote NAME VERSION``.
Pure: the controller gathers the observations and stores the returned move.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from keel.deploy import model
from keel.deploy.canary import Decision, Move, evidence_of
from keel.deploy.model import Deployment

STAGE = "in shadow"


def _short(versions: Sequence[str]) -> str:
    return ", ".join(v[:12] for v in versions)


def _ready_reason(deployment: Deployment, ready: Sequence[Decision]) -> str:
    lead = ready[0]
    checks = lead.action.state.passes_in_step
    passed = f"passed {checks} consecutive checks {STAGE} ({lead.judgement.reason})"
    if deployment.then == "canary":
        return f"{_short([x.version for x in ready])} ready: {passed}"
    name = "VERSION" if len(deployment.live) > 1 else lead.version[:12]
    return (
        f"{_short([x.version for x in ready])} ready: {passed}; promote with "
        f"`keel deploy promote {deployment.pipeline} {name}`"
    )


def shadow_move(
    deployment: Deployment, decisions: Sequence[Decision], now: datetime
) -> Move | None:
    """Combine the live candidates' actions into one transition (None: nothing to store)."""
    if not decisions:
        return None
    several = len(deployment.candidates) > 1
    failed = [x for x in decisions if x.action.kind == "rollback"]
    alive = [x for x in decisions if x.action.kind != "rollback"]
    before = set(deployment.extra.get("ready", ()))
    ready = [  # passed again, or ready before and not checked since
        x
        for x in alive
        if x.action.kind == "promote" or (x.action.kind == "wait" and x.version in before)
    ]
    rollouts = dict(deployment.extra.get("rollouts", {}))
    for x in decisions:  # a ready candidate is still judged: its rollout stays open
        state = x.action.state
        rollouts[x.version] = (
            replace(state, status="progressing") if x.action.kind == "promote" else state
        ).to_dict()
    retired = (*deployment.retired, *(x.version for x in failed))
    extra = {k: v for k, v in deployment.extra.items() if k != "ready"} | {"rollouts": rollouts}
    if not alive:
        lead = failed[0]
        reason = f"{_short([x.version for x in failed])}: {lead.action.reason}"
        base = replace(deployment, extra=extra, retired=retired)
        evidence = evidence_of(lead, decisions, several)
        return Move(model.roll_back(base, now, reason), "rolled_back", evidence)
    if deployment.then == "canary" and len(ready) == len(alive):
        reason = _ready_reason(deployment, ready) + (
            f"; canary of {_short([x.version for x in ready])} starts at {deployment.steps[0]:g} %"
        )
        if failed:
            gone = _short([x.version for x in failed])
            reason += f" ({gone} rolled back: {failed[0].action.reason})"
        base = replace(deployment, extra=extra, retired=retired)
        evidence = evidence_of(ready[0], decisions, several)
        return Move(model.to_canary(base, now, reason), "canary_started", evidence)
    found = _event(deployment, decisions, failed, ready, before)
    if found is None:
        return None
    action, lead, reason = found
    # a candidate counts as ready once its readiness is recorded (the ``ready`` event)
    shown = [x.version for x in ready if action in ("ready", "checked") or x.version in before]
    extra |= {"ready": sorted(shown)} if shown else {}
    base = replace(deployment, extra=extra, retired=retired)
    after = model.reweigh(base, now, base.weights, reason)
    evidence = evidence_of(lead, decisions, several)
    return Move(after, action, evidence, record=action != "checked")


def _event(
    deployment: Deployment,
    decisions: Sequence[Decision],
    failed: Sequence[Decision],
    ready: Sequence[Decision],
    before: set[str],
) -> tuple[str, Decision, str] | None:
    """The round's history event, the candidate whose judgement is its evidence, and why."""
    if failed:
        lead = failed[0]
        return "candidate_rolled_back", lead, f"{lead.version[:12]}: {lead.action.reason}"
    held = [x for x in decisions if x.action.kind == "hold"]
    if held:
        return "held", held[0], f"{held[0].version[:12]}: {held[0].action.reason}"
    new = [x for x in ready if x.version not in before]
    if new:
        return "ready", new[0], _ready_reason(deployment, ready)
    if all(x.action.kind == "wait" and x.action.state == x.state for x in decisions):
        return None  # nothing learnt: no write, no history
    return "checked", decisions[0], deployment.reason or ""
