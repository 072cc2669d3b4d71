"""The audit log keeps admin actions, newest first."""

from __future__ import annotations

import pytest

from keel.core.errors import InvalidInputError
from keel.store import Store


def test_record_and_list_newest_first(store: Store) -> None:
    first = store.audit.record("key:ops", "label.set", "triage/production", {"from": None})
    second = store.audit.record("cli:alice", "pipeline.push", "triage", {"version": "ab12"})
    entries = store.audit.list()
    assert [e.id for e in entries] == [second.id, first.id]
    assert entries[0].actor == "cli:alice"
    assert entries[0].details == {"version": "ab12"}
    assert entries[1].details == {"from": None}
    assert entries[1].target == "triage/production"
    assert entries[1].at == first.at


def test_list_limit(store: Store) -> None:
    for i in range(5):
        store.audit.record("a", "act", str(i))
    assert [e.target for e in store.audit.list(limit=2)] == ["4", "3"]
    with pytest.raises(InvalidInputError):
        store.audit.list(limit=0)
