"""Start, move and end deployments: the operations the API, the CLI and the controller share.

Every request is checked in full before anything is written, and each change is one store
transaction, so a refused request leaves the running deployment exactly as it was. After a
change, ``notify`` announces the pipeline (Redis pub/sub when configured; Postgres also
notifies from inside the transaction) so every replica applies it at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from keel.core.errors import ConflictError, InvalidInputError, NotFoundError
from keel.deploy import model
from keel.deploy.model import Deployment, Plan, State, Strategy
from keel.store import Store
from keel.store.deployments import PRODUCTION, DeploymentEvent

Notify = Callable[[str], None]


def _now() -> datetime:
    return datetime.now(UTC)


class DeploymentService:
    def __init__(self, store: Store, notify: Notify | None = None) -> None:
        self._store = store
        self._notify = notify or (lambda _pipeline: None)

    # --- reading --------------------------------------------------------------------

    def current(self, pipeline: str) -> Deployment:
        """The active deployment of ``pipeline``, else its most recent one."""
        found = self._store.deployments.active(pipeline)
        if found is None:
            recent = self._store.deployments.list(pipeline, limit=1)
            if not recent:
                self._store.pipelines.latest(pipeline)  # a clear error for an unknown pipeline
                raise NotFoundError(
                    f"pipeline {pipeline!r} has never been deployed; start one with "
                    f"`keel deploy {pipeline} VERSION`",
                    code="deployment_not_found",
                )
            found = recent[0]
        return found

    def active(self, pipeline: str) -> Deployment:
        found = self._store.deployments.active(pipeline)
        if found is None:
            raise NotFoundError(
                f"pipeline {pipeline!r} has no active deployment", code="deployment_not_active"
            )
        return found

    def history(
        self, pipeline: str, limit: int = 20
    ) -> list[tuple[Deployment, list[DeploymentEvent]]]:
        self._store.pipelines.latest(pipeline)  # unknown pipeline → pipeline_not_found
        repo = self._store.deployments
        return [(d, repo.history(d.id)) for d in repo.list(pipeline, limit=limit)]

    # --- starting -------------------------------------------------------------------

    def stable_version(self, pipeline: str) -> str:
        """What callers get today: the production label, else the latest push."""
        try:
            return self._store.pipelines.resolve_label(pipeline, PRODUCTION)
        except NotFoundError as exc:
            if exc.code != "label_not_found":
                raise
            return self._store.pipelines.latest(pipeline).version

    def start(
        self,
        pipeline: str,
        versions: str | Sequence[str],
        plan_args: Mapping[str, Any],
        actor: str,
    ) -> Deployment:
        """Validate everything, then store the deployment and start it in one go."""
        named = [versions] if isinstance(versions, str) else list(versions)
        candidates = tuple(self._store.pipelines.get_version(pipeline, v).version for v in named)
        stable = self.stable_version(pipeline)
        args = dict(plan_args)
        if args.get("weights") is not None:
            args["weights"] = self._resolve_weights(pipeline, args["weights"], stable)
        plan = Plan(candidates=candidates, **args)
        weights = plan.weights_for(stable)  # also refuses a candidate equal to stable
        if plan.evaluator:
            _check_evaluator(plan.evaluator)
        now = _now()
        shown = ", ".join(c[:12] for c in candidates)
        deployment = Deployment(
            id=secrets.token_hex(8),
            pipeline=pipeline,
            strategy=plan.strategy,
            state=State.PENDING,
            stable=stable,
            candidates=candidates,
            weights={**dict.fromkeys(candidates, 0.0), stable: 100.0},
            salt=secrets.token_hex(8),
            created_at=now,
            updated_at=now,
            step_started_at=now,
            steps=plan.steps,
            interval_s=plan.interval_s,
            mirror=plan.mirror,
            sticky=plan.sticky,
            evaluator=plan.evaluator,
            min_samples=plan.min_samples,
            then=plan.then,
            created_by=actor,
            reason=f"{plan.strategy.value} of {shown} over {stable[:12]} requested",
        )
        created = self._store.deployments.create(deployment, actor)
        if plan.strategy == Strategy.BLUE_GREEN:
            self._notify(pipeline)
            return created  # waits at weight 0 until promoted: the switch is one command
        split = ", ".join(f"{v[:12]} {w:g}%" for v, w in weights.items() if v != stable)
        started = model.start(created, _now(), weights, f"started: {split}")
        return self._apply(created, started, actor, "started")

    # --- moving ---------------------------------------------------------------------

    def promote(
        self,
        pipeline: str,
        actor: str,
        reason: str = "promoted by hand",
        evidence: dict[str, Any] | None = None,
        version: str | None = None,
    ) -> Deployment:
        """All traffic to one candidate (the only live one unless ``version`` names it)."""
        before = self.active(pipeline)
        after = model.promote(before, _now(), reason, version)
        winner = after.winner or after.candidate  # a promotion always names its winner
        return self._apply(before, after, actor, "promoted", evidence, production=winner)

    def rollback(
        self,
        pipeline: str,
        actor: str,
        reason: str = "rolled back by hand",
        evidence: dict[str, Any] | None = None,
        version: str | None = None,
    ) -> Deployment:
        """End the active deployment on stable; with none active, undo the last promotion.
        ``version`` rolls back that one candidate: its weight returns to stable and the
        others carry on (the last live candidate ends the deployment)."""
        before = self._store.deployments.active(pipeline)
        if before is not None and version is not None:
            return self._retire(before, version, actor, reason, evidence)
        if before is not None:
            after = model.roll_back(before, _now(), reason)
            return self._apply(before, after, actor, "rolled_back", evidence)
        if version is not None:
            raise NotFoundError(
                f"pipeline {pipeline!r} has no active deployment to roll a candidate back in",
                code="deployment_not_active",
            )
        last = self.current(pipeline)
        if last.state != State.PROMOTED:
            raise ConflictError(
                f"nothing to roll back on {pipeline!r}: its last deployment {last.id} is "
                f"{last.state.value}",
                code="deployment_state_invalid",
            )
        after = model.roll_back(last, _now(), reason + f"; production back to {last.stable[:12]}")
        return self._apply(last, after, actor, "rolled_back", evidence, production=last.stable)

    def _retire(
        self,
        before: Deployment,
        version: str,
        actor: str,
        reason: str,
        evidence: dict[str, Any] | None,
    ) -> Deployment:
        found = before.resolve(version)
        changes: dict[str, Any] = {}
        if before.strategy == Strategy.AB:  # the split changed: the report starts afresh
            changes["step_started_at"] = _now()
        after = model.retire(before, _now(), found, f"{reason}: {found[:12]}", **changes)
        action = "rolled_back" if after.state == State.ROLLED_BACK else "candidate_rolled_back"
        return self._apply(before, after, actor, action, evidence)

    def pause(self, pipeline: str, actor: str) -> Deployment:
        before = self.active(pipeline)
        return self._apply(before, model.pause(before, _now(), "paused by hand"), actor, "paused")

    def resume(self, pipeline: str, actor: str) -> Deployment:
        before = self.active(pipeline)
        return self._apply(before, model.resume(before, _now(), "resumed"), actor, "resumed")

    def set_weights(self, pipeline: str, weights: Mapping[str, float], actor: str) -> Deployment:
        before = self.active(pipeline)
        if before.strategy in (Strategy.SHADOW, Strategy.BLUE_GREEN):
            raise InvalidInputError(
                f"a {before.strategy.value} deployment sends no primary traffic to its "
                "candidate before promotion; its weights cannot be set",
                code="deployment_weights_invalid",
            )
        resolved = self._resolve_weights(pipeline, weights, before.stable)
        after = model.reweigh(
            before, _now(), resolved, "weights set by hand", step_started_at=_now()
        )
        return self._apply(before, after, actor, "weights")

    def apply(
        self,
        before: Deployment,
        after: Deployment,
        actor: str,
        action: str,
        evidence: dict[str, Any] | None = None,
        *,
        production: str | None = None,
        record: bool = True,
    ) -> Deployment:
        """Store a transition decided elsewhere (the controller)."""
        return self._apply(
            before, after, actor, action, evidence, production=production, record=record
        )

    def _apply(
        self,
        before: Deployment,
        after: Deployment,
        actor: str,
        action: str,
        evidence: dict[str, Any] | None = None,
        *,
        production: str | None = None,
        record: bool = True,
    ) -> Deployment:
        stored = self._store.deployments.apply(
            before, after, actor, action, evidence, production=production, record=record
        )
        self._notify(after.pipeline)
        return stored

    def _resolve_weights(
        self, pipeline: str, weights: Mapping[str, float], stable: str
    ) -> dict[str, float]:
        """Version prefixes (or ``stable``) → full versions; unknown ones are refused."""
        resolved: dict[str, float] = {}
        for version, weight in weights.items():
            full = stable if version == "stable" else self._version(pipeline, version)
            if full in resolved:
                raise InvalidInputError(
                    f"weights name {full[:12]} twice", code="deployment_weights_invalid"
                )
            resolved[full] = float(weight)
        return resolved

    def _version(self, pipeline: str, version: str) -> str:
        try:
            return self._store.pipelines.get_version(pipeline, version).version
        except NotFoundError as exc:
            raise InvalidInputError(exc.message, code="deployment_weights_invalid") from exc


def _check_evaluator(spec: str) -> None:
    from keel.evals.registry import EvaluatorRegistry  # deferred: evaluators import a lot

    name = spec.partition(":")[0]
    if name not in EvaluatorRegistry.from_entry_points().names:
        raise InvalidInputError(
            f"unknown evaluator {name!r} for scoring shadowed pairs",
            code="deployment_evaluator_invalid",
        )
