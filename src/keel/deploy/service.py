"""Start, move and end deployments: the operations the API, the CLI and the controller share.

Every request is checked in full before anything is written, and each change is one store
transaction, so a refused request leaves the running deployment exactly as it was. After a
change, ``notify`` announces the pipeline (Redis pub/sub when configured; Postgres also
notifies from inside the transaction) so every replica applies it at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
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
        self, pipeline: str, version: str, plan_args: Mapping[str, Any], actor: str
    ) -> Deployment:
        """Validate everything, then store the deployment and start it in one go."""
        candidate = self._store.pipelines.get_version(pipeline, version).version
        plan = Plan(candidate=candidate, **plan_args)
        stable = self.stable_version(pipeline)
        if stable == candidate:
            raise ConflictError(
                f"{pipeline}@{candidate[:12]} is already what production serves",
                code="deployment_noop",
            )
        if plan.evaluator:
            _check_evaluator(plan.evaluator)
        now = _now()
        deployment = Deployment(
            id=secrets.token_hex(8),
            pipeline=pipeline,
            strategy=plan.strategy,
            state=State.PENDING,
            stable=stable,
            candidate=candidate,
            weights=model.split_weights(candidate, stable, 0.0),
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
            created_by=actor,
            reason=f"{plan.strategy.value} of {candidate[:12]} over {stable[:12]} requested",
        )
        created = self._store.deployments.create(deployment, actor)
        if plan.strategy == Strategy.BLUE_GREEN:
            self._notify(pipeline)
            return created  # waits at weight 0 until promoted: the switch is one command
        weight = plan.initial_weight()
        reason = f"started: candidate at {weight:g}%"
        started = model.start(created, _now(), weight, reason)
        return self._apply(created, started, actor, "started")

    # --- moving ---------------------------------------------------------------------

    def promote(
        self,
        pipeline: str,
        actor: str,
        reason: str = "promoted by hand",
        evidence: dict[str, Any] | None = None,
    ) -> Deployment:
        before = self.active(pipeline)
        after = model.promote(before, _now(), reason)
        return self._apply(before, after, actor, "promoted", evidence, production=after.candidate)

    def rollback(
        self,
        pipeline: str,
        actor: str,
        reason: str = "rolled back by hand",
        evidence: dict[str, Any] | None = None,
    ) -> Deployment:
        """End the active deployment on stable; with none active, undo the last promotion."""
        before = self._store.deployments.active(pipeline)
        if before is not None:
            after = model.roll_back(before, _now(), reason)
            return self._apply(before, after, actor, "rolled_back", evidence)
        last = self.current(pipeline)
        if last.state != State.PROMOTED:
            raise ConflictError(
                f"nothing to roll back on {pipeline!r}: its last deployment {last.id} is "
                f"{last.state.value}",
                code="deployment_state_invalid",
            )
        after = model.roll_back(last, _now(), reason + f"; production back to {last.stable[:12]}")
        return self._apply(last, after, actor, "rolled_back", evidence, production=last.stable)

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
        resolved = {self._version(pipeline, v): w for v, w in weights.items()}
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
