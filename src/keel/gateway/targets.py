"""What a request's ``model`` names: a provider model, an alias (a fallback chain) or a
pipeline (``pipeline/NAME``, ``pipeline/NAME@LABEL`` or ``pipeline/NAME@VERSION``)."""

from __future__ import annotations

from dataclasses import dataclass

from keel.catalog import PipelineRef
from keel.core.errors import KeelError, NotFoundError
from keel.core.messages import ModelRef
from keel.providers.base import ChatModel
from keel.providers.registry import ProviderRegistry
from keel.settings import AliasSettings, GatewaySettings, RouteRule

PIPELINE_PREFIX = "pipeline/"


@dataclass(frozen=True, slots=True)
class Target:
    name: str  # what the client asked for, echoed back in ``model``
    chain: tuple[str, ...] = ()  # provider:model ids, first serves, the rest fall back
    pipeline: PipelineRef | None = None
    routes: tuple[RouteRule, ...] = ()  # an alias's routing rules, tried before ``chain``


class Targets:
    """Resolves model names, caching the answer per name (aliases are fixed at start-up)."""

    def __init__(self, settings: GatewaySettings, registry: ProviderRegistry) -> None:
        self._aliases = settings.aliases
        self._registry = registry
        self._cache: dict[str, Target] = {}

    def resolve(self, name: str) -> Target:
        found = self._cache.get(name)
        if found is not None:
            return found
        if name.startswith(PIPELINE_PREFIX):
            found = Target(name, pipeline=PipelineRef.parse(name[len(PIPELINE_PREFIX) :]))
        elif name in self._aliases:
            alias = self._aliases[name]
            found = Target(name, tuple(alias.models), routes=tuple(alias.routes))
        elif ":" in name:
            ModelRef.parse(name)
            found = Target(name, (name,))
        else:
            raise _unknown(
                name, "it is neither provider:model, a configured alias nor pipeline/NAME"
            )
        if len(self._cache) < 4096:
            self._cache[name] = found
        return found

    def model(self, model_id: str) -> ChatModel:
        try:
            return self._registry.model(model_id)
        except KeelError as exc:
            if exc.code in ("provider_unknown", "provider_model_not_found", "model_id_invalid"):
                raise _unknown(model_id, exc.message) from exc
            raise

    @property
    def aliases(self) -> dict[str, AliasSettings]:
        return self._aliases


def _unknown(name: str, why: str) -> NotFoundError:
    return NotFoundError(
        f"unknown model {name!r}: {why}. GET /v1/models lists aliases and pipelines.",
        code="model_not_found",
        model=name,
    )
