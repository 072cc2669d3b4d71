"""Which version answers a request to a deployed pipeline.

The router holds this replica's view of the active deployments (installed by the watcher,
see :mod:`keel.deploy.live`) and decides per request, without I/O:

* weighted random over the deployment's weights, or
* sticky: a salted SHA-256 of the user key (a header, a body field or the API key id) picks
  a point in [0, 100) and :func:`choose` maps it to an arm, so a user keeps the same arm
  while the weights stay put, and a rising canary only moves users onto it;
* shadow: the primary answer is stable's; ``mirror`` percent of requests are also handed
  to the shadow mirror, which runs every candidate off the hot path.

A caller naming an explicit version or label bypasses the deployment.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.deploy.model import Deployment, StickyKey

if TYPE_CHECKING:
    from keel.catalog import PipelineCatalog
    from keel.pipeline.compiled import CompiledPipeline

DEPLOYMENT_ID = "keel.deploy.id"
ROLE = "keel.deploy.role"  # stable | candidate | shadow
STRATEGY = "keel.deploy.strategy"
PAIR_ID = "keel.deploy.pair_id"  # shared by the two runs of one shadowed request
STICKY = "keel.deploy.sticky"  # whether a user key chose the arm
UNIT = "keel.deploy.unit"  # sticky: a pseudonymous id of the user (salted hash), per deployment


@dataclass(frozen=True, slots=True)
class RequestKeys:
    """What a request offers as a user key: its headers (lower-case names), body, API key."""

    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    key_id: str | None = None

    def user_key(self, sticky: StickyKey) -> str | None:
        if sticky.source == "key":
            return self.key_id
        if sticky.source == "header":
            return self.headers.get(sticky.name.lower()) or None
        value = self.body
        for part in sticky.name.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return None
            value = value[part]
        return None if value is None or isinstance(value, dict | list) else str(value)


def _digest(salt: str, user: str) -> bytes:
    return hashlib.sha256(f"{salt}\x00{user}".encode()).digest()


def bucket(salt: str, user: str) -> float:
    """A point in [0, 100) fixed by the deployment's salt and the user key."""
    digest = hashlib.sha256(f"{salt}\x00{user}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


def _point(digest: bytes) -> float:
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


def choose(arms: Sequence[tuple[str, float]], point: float) -> str:
    """The arm whose share of [0, 100) holds ``point``; ``arms`` are the candidates in
    order, then stable (last).

    When every candidate's weight fits in an even lane (``100 / candidates``), candidate
    *i* owns ``[i * lane, i * lane + weight)`` and stable owns the rest of each lane: a
    candidate's rising weight only moves stable users onto it, and a candidate dropping to
    0 only moves its own users (back to stable). With a single candidate this is the
    candidate owning ``[0, weight)``. Otherwise the arms are laid end to end in order.
    Either way a user keeps the same arm while the weights stay put."""
    count = len(arms) - 1
    lane = 100.0 / count if count > 1 else 100.0
    if count == 1:  # the common case, spelled out: the candidate owns [0, weight)
        version, weight = arms[0]
        if point < weight:
            return version
        version, weight = arms[1]
    elif all(weight <= lane for _, weight in arms[:count]):
        index = min(int(point // lane), count - 1)
        version, weight = arms[index]
        if point - index * lane < weight:
            return version
        version, weight = arms[-1]  # stable's part of the lane
    else:
        edge, (version, weight) = 0.0, arms[-1]
        for arm, share in arms:
            edge += share
            if point < edge:
                version, weight = arm, share
                break
    if weight > 0:
        return version
    return next((v for v, w in reversed(arms) if w > 0), arms[-1][0])  # rounding at an edge


@dataclass(frozen=True, slots=True)
class Routed:
    compiled: CompiledPipeline
    attributes: dict[str, Any]
    deployment: Deployment | None = None
    mirror_pair: str | None = None  # set when this request is also run on the shadow

    @property
    def role(self) -> str | None:
        return self.attributes.get(ROLE)


class DeploymentRouter:
    """This replica's routing table; swapped whole, so readers never see half a change."""

    def __init__(self, catalog: PipelineCatalog, rng: random.Random | None = None) -> None:
        self._catalog = catalog
        self._rng = rng or random.Random()
        self._table: dict[str, Deployment] = {}
        self._applied_at: dict[str, float] = {}
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def install(self, active: Iterable[Deployment], read_at: float | None = None) -> list[str]:
        """Adopt the store's active deployments, read at ``read_at`` (``time.monotonic()``
        before the read); returns the pipelines that changed. A snapshot read before the
        one already installed is ignored, so concurrent refreshes never step back."""
        with self._lock:
            read_at = time.monotonic() if read_at is None else read_at
            if read_at < self._read_at:
                return []
            self._read_at = read_at
            return self._swap({d.pipeline: d for d in active})

    def _swap(self, table: dict[str, Deployment]) -> list[str]:
        old = self._table
        changed = sorted(
            name for name in set(old) | set(table) if _mark(old.get(name)) != _mark(table.get(name))
        )
        now = time.time()
        for name in changed:
            self._catalog.forget_label(name)  # a promotion or rollback moved production
            self._applied_at[name] = now
        self._table = table
        return changed

    def deployment(self, pipeline: str) -> Deployment | None:
        return self._table.get(pipeline)

    def view(self, pipeline: str) -> dict[str, Any]:
        """What this replica applies for ``pipeline`` (served by the routing endpoint)."""
        found = self._table.get(pipeline)
        return {
            "pipeline": pipeline,
            "deployment": found.to_dict() if found else None,
            "applied_at": self._applied_at.get(pipeline),
        }

    def route(self, pipeline: str, keys: RequestKeys, *, mirror_allowed: bool = True) -> Routed:
        found = self._table.get(pipeline)
        if found is None:
            return Routed(self._catalog.resolve(pipeline), {})
        unit = None
        user = keys.user_key(found.sticky) if found.sticky else None
        if user is not None:
            digest = _digest(found.salt, user)
            version, unit = choose(found.arms(), _point(digest)), digest[8:16].hex()
        else:
            version = choose(found.arms(), self._rng.random() * 100.0)
        role = found.role_of(version)
        attributes: dict[str, Any] = {
            DEPLOYMENT_ID: found.id,
            ROLE: role,
            STRATEGY: found.strategy.value,
            STICKY: unit is not None,
        }
        if unit is not None:  # the A/B report counts users, not requests, when sticky
            attributes[UNIT] = unit
        pair = None
        mirrored = mirror_allowed and role == "stable" and found.mirror > 0
        if mirrored and self._rng.random() * 100.0 < found.mirror:
            pair = secrets.token_hex(16)
            attributes[PAIR_ID] = pair
        compiled = self._catalog.compiled(pipeline, version)
        return Routed(compiled, attributes, found, pair)


def _mark(deployment: Deployment | None) -> tuple[str, int] | None:
    return (deployment.id, deployment.revision) if deployment is not None else None
