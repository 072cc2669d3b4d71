"""Provider registry: plugins from the ``keel.providers`` entry points, resolved by model id.

Built-in providers are registered through the same entry points a third-party package
uses. Plugins are loaded once, when the registry is built; providers are constructed on
first use and model objects are cached per id, so resolving a model on the hot path is a
dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

from keel.core.errors import ConfigError, ProviderUnavailable
from keel.core.messages import ModelRef
from keel.providers.base import ChatModel, Provider, ProviderPlugin

ENTRY_POINT_GROUP = "keel.providers"


def load_plugins(group: str = ENTRY_POINT_GROUP) -> list[ProviderPlugin]:
    """Every provider plugin installed in this environment."""
    plugins: list[ProviderPlugin] = []
    for ep in entry_points(group=group):
        try:
            plugin = ep.load()
        except ImportError as exc:
            raise ConfigError(
                f"provider plugin {ep.name!r} ({ep.value}) failed to import: {exc}",
                code="plugin_import_failed",
            ) from exc
        if not isinstance(plugin, ProviderPlugin):
            raise ConfigError(
                f"entry point {ep.name!r} in {group} must be a ProviderPlugin, got {plugin!r}",
                code="plugin_invalid",
            )
        plugins.append(plugin)
    return plugins


class ProviderRegistry:
    """Maps provider names to plugins and ``provider:model`` ids to ``ChatModel`` objects."""

    def __init__(
        self,
        plugins: Iterable[ProviderPlugin] = (),
        options: Mapping[str, Mapping[str, Any]] | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self._plugins: dict[str, ProviderPlugin] = {}
        self._options: dict[str, Mapping[str, Any]] = dict(options or {})
        self._aliases: dict[str, str] = dict(aliases or {})
        self._providers: dict[str, Provider] = {}
        self._models: dict[str, ChatModel] = {}
        for plugin in plugins:
            self.register(plugin)

    @classmethod
    def from_entry_points(
        cls,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        aliases: Mapping[str, str] | None = None,
    ) -> ProviderRegistry:
        return cls(load_plugins(), options, aliases)

    def register(self, plugin: ProviderPlugin, options: Mapping[str, Any] | None = None) -> None:
        self._plugins[plugin.name] = plugin
        if options is not None:
            self._options[plugin.name] = options

    def add_endpoint(self, name: str, base: str, options: Mapping[str, Any]) -> None:
        """Expose another endpoint of an existing provider kind under a new name."""
        if base not in self._plugins:
            raise ConfigError(f"cannot add endpoint {name!r}: no provider {base!r} is installed")
        self._plugins[name] = ProviderPlugin(name, self._plugins[base].factory)
        self._options[name] = options

    @property
    def names(self) -> list[str]:
        return sorted(self._plugins)

    def provider(self, name: str) -> Provider:
        found = self._providers.get(name)
        if found is not None:
            return found
        plugin = self._plugins.get(name)
        if plugin is None:
            raise ProviderUnavailable(
                f"no provider named {name!r}; installed: {', '.join(self.names) or 'none'}",
                code="provider_unknown",
                provider=name,
            )
        created = plugin.factory(name, self._options.get(name, {}))
        self._providers[name] = created
        return created

    def model(self, model_id: str) -> ChatModel:
        """The model behind ``provider:model`` (or an alias of one)."""
        found = self._models.get(model_id)
        if found is not None:
            return found
        ref = ModelRef.parse(self._aliases.get(model_id, model_id))
        model = self.provider(ref.provider).model(ref.name)
        self._models[model_id] = model
        return model

    async def aclose(self) -> None:
        providers = list(self._providers.values())
        self._providers.clear()
        self._models.clear()
        for provider in providers:
            await provider.aclose()
