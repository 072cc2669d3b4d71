"""The pipeline catalog: push specs as immutable versions, move labels, resolve what to run.

Resolution order when a caller names neither a version nor a label: the ``production``
label if the pipeline has one, else the most recently pushed version. Compiled versions are
cached forever (they are immutable); label lookups are cached for ``label_ttl`` seconds so
that a moved label reaches every replica within that delay.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.core.errors import InvalidInputError, KeelError, NotFoundError, SpecError
from keel.core.spec import PipelineSpec
from keel.pipeline.compiled import CompiledPipeline
from keel.pipeline.loader import spec_from_data

if TYPE_CHECKING:
    from keel.store import Store

DEFAULT_LABEL = "production"
_COMPILED_CACHE_SIZE = 512


@dataclass(frozen=True, slots=True)
class PushResult:
    name: str
    version: str
    created: bool


@dataclass(frozen=True, slots=True)
class PipelineRef:
    """``NAME``, ``NAME@VERSION`` or ``NAME@LABEL`` as typed by a user."""

    name: str
    version: str | None = None
    label: str | None = None

    @classmethod
    def parse(cls, text: str) -> PipelineRef:
        name, _, at = text.partition("@")
        if not name:
            raise InvalidInputError(f"{text!r} names no pipeline; use NAME[@VERSION|@LABEL]")
        if not at:
            return cls(name)
        if all(c in "0123456789abcdef" for c in at) and len(at) >= 6:
            return cls(name, version=at)
        return cls(name, label=at)


class PipelineCatalog:
    def __init__(
        self,
        store: Store,
        *,
        label_ttl: float = 1.0,
        checks: Sequence[Callable[[CompiledPipeline], None]] = (),
    ) -> None:
        self._store = store
        self._checks = tuple(checks)  # features validating their spec sections at push
        self._label_ttl = label_ttl
        self._compiled: OrderedDict[tuple[str, str], CompiledPipeline] = OrderedDict()
        self._pointers: dict[tuple[str, str], tuple[float, str]] = {}

    @property
    def store(self) -> Store:
        return self._store

    def push(self, spec: PipelineSpec, *, created_by: str | None = None) -> PushResult:
        """Validate and compile the spec fully, then store it; invalid specs store nothing."""
        compiled = CompiledPipeline.build(spec)
        for check in self._checks:
            check(compiled)
        created = self._store.pipelines.put_version(
            spec.name,
            compiled.version,
            spec.model_dump(mode="json", by_alias=True),
            created_by=created_by,
        )
        self._remember(compiled)
        return PushResult(spec.name, compiled.version, created)

    def compiled(self, name: str, version: str) -> CompiledPipeline:
        cached = self._compiled.get((name, version))
        if cached is not None:
            return cached
        stored = self._store.pipelines.get_version(name, version)
        cached = self._compiled.get((name, stored.version))
        if cached is not None:
            return cached
        try:
            spec = spec_from_data(stored.spec, source=f"stored spec {name}@{stored.version}")
            compiled = CompiledPipeline.build(spec, stored.version)
        except KeelError as exc:
            raise SpecError(
                f"stored version {name}@{stored.version} no longer compiles: {exc.message}",
                code="stored_spec_invalid",
            ) from exc
        self._remember(compiled)
        return compiled

    def resolve(
        self, name: str, *, version: str | None = None, label: str | None = None
    ) -> CompiledPipeline:
        if version and label:
            raise InvalidInputError("give a version or a label, not both", code="ref_ambiguous")
        if version:
            return self.compiled(name, version)
        return self.compiled(name, self._pointer(name, label))

    def resolve_ref(self, ref: PipelineRef) -> CompiledPipeline:
        return self.resolve(ref.name, version=ref.version, label=ref.label)

    def set_label(self, name: str, label: str, version: str) -> str | None:
        full = self._store.pipelines.get_version(name, version).version
        previous = self._store.pipelines.set_label(name, label, full)
        self._pointers.pop((name, label), None)
        return previous

    def forget_label(self, name: str) -> None:
        """Drop ``name``'s cached label pointers: the next call reads them again."""
        for key in list(self._pointers):  # a snapshot: request threads may add meanwhile
            if key[0] == name:
                self._pointers.pop(key, None)

    def _pointer(self, name: str, label: str | None) -> str:
        key = (name, label or "")
        now = time.monotonic()
        hit = self._pointers.get(key)
        if hit is not None and now - hit[0] < self._label_ttl:
            return hit[1]
        version = self._lookup_pointer(name, label)
        self._pointers[key] = (now, version)
        return version

    def _lookup_pointer(self, name: str, label: str | None) -> str:
        pipelines = self._store.pipelines
        if label:
            return pipelines.resolve_label(name, label)
        try:
            return pipelines.resolve_label(name, DEFAULT_LABEL)
        except NotFoundError as exc:
            if exc.code != "label_not_found":
                raise
            return pipelines.latest(name).version

    def _remember(self, compiled: CompiledPipeline) -> None:
        self._compiled[(compiled.name, compiled.version)] = compiled
        self._compiled.move_to_end((compiled.name, compiled.version))
        while len(self._compiled) > _COMPILED_CACHE_SIZE:
            self._compiled.popitem(last=False)

    def describe(self, name: str) -> dict[str, Any]:
        versions = self._store.pipelines.list_versions(name)
        return {
            "name": name,
            "labels": self._store.pipelines.labels(name),
            "versions": [
                {"version": v.version, "created_at": v.created_at.isoformat(), "by": v.created_by}
                for v in versions
            ],
        }
