"""What commands share: settings, and the store or full runtime built from them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from keel.catalog import PipelineCatalog
from keel.settings import KeelSettings
from keel.store import Store
from keel.store.engine import SQLiteTuning


def load_settings() -> KeelSettings:
    return KeelSettings()


@contextmanager
def open_store() -> Iterator[Store]:
    settings = load_settings()
    store = Store.open(
        settings.resolved_database_url, sqlite=SQLiteTuning(**settings.sqlite.model_dump())
    )
    try:
        yield store
    finally:
        store.close()


@contextmanager
def open_catalog() -> Iterator[PipelineCatalog]:
    with open_store() as store:
        from keel.guardrails.plugin import GuardrailPlugin  # deferred: scanners import a lot

        allow = load_settings().guardrails.webhook_allow_private
        plugin = GuardrailPlugin(allow_private_webhooks=allow)
        yield PipelineCatalog(store, label_ttl=0, checks=[plugin.check])
