"""Store fixtures from tests/store: ``fresh_url`` is a database nothing has touched yet."""

from tests.store.conftest import backend, fresh_url

__all__ = ["backend", "fresh_url"]
