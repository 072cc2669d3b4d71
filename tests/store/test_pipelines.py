"""Pipeline versions are immutable and content-addressed; labels are validated pointers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from keel.core.errors import InvalidInputError, NotFoundError
from keel.store import Store

V1 = "1a2b3c4d5e6f" + "0" * 52
V2 = "1a2b3c9999aa" + "1" * 52
V3 = "ffee00112233" + "2" * 52
SPEC = {"name": "triage", "model": "openai:gpt-4o-mini", "params": {"temperature": 0.2}}


def test_put_version_stores_once(store: Store) -> None:
    assert store.pipelines.put_version("triage", V1, SPEC, created_by="alice") is True
    assert store.pipelines.put_version("triage", V1, {"other": True}, created_by="bob") is False
    stored = store.pipelines.get_version("triage", V1)
    assert stored.spec == SPEC
    assert stored.created_by == "alice"
    assert stored.created_at.tzinfo is not None
    assert abs(datetime.now(UTC) - stored.created_at) < timedelta(minutes=1)
    assert len(store.pipelines.list_versions("triage")) == 1


def test_spec_json_round_trips(store: Store) -> None:
    spec = {"prompt": 'Résumé ✓ "quoted"\nline', "list": [1, 2.5, None, True], "n": {"x": []}}
    store.pipelines.put_version("p", V1, spec)
    assert store.pipelines.get_version("p", V1).spec == spec


def test_get_version_by_unique_prefix(store: Store) -> None:
    store.pipelines.put_version("triage", V1, SPEC)
    store.pipelines.put_version("triage", V3, SPEC)
    assert store.pipelines.get_version("triage", "1a2b3c4d").version == V1
    assert store.pipelines.get_version("triage", "FFEE00").version == V3


def test_ambiguous_prefix_is_invalid_input(store: Store) -> None:
    store.pipelines.put_version("triage", V1, SPEC)
    store.pipelines.put_version("triage", V2, SPEC)
    with pytest.raises(InvalidInputError) as info:
        store.pipelines.get_version("triage", "1a2b3c")
    assert info.value.code == "version_ambiguous"
    assert sorted(info.value.details["candidates"]) == [V1, V2]


def test_short_prefix_is_not_a_match(store: Store) -> None:
    store.pipelines.put_version("triage", V1, SPEC)
    with pytest.raises(NotFoundError) as info:
        store.pipelines.get_version("triage", "1a2b3")
    assert info.value.code == "version_not_found"
    assert "at least 6" in info.value.message


@pytest.mark.parametrize(
    ("pipeline", "version", "code"),
    [
        ("nope", V1, "pipeline_not_found"),
        ("triage", V3, "version_not_found"),
        ("triage", "not-hex%", "version_not_found"),
    ],
)
def test_unknown_versions(store: Store, pipeline: str, version: str, code: str) -> None:
    store.pipelines.put_version("triage", V1, SPEC)
    with pytest.raises(NotFoundError) as info:
        store.pipelines.get_version(pipeline, version)
    assert info.value.code == code


def test_latest_is_the_last_new_push(store: Store) -> None:
    store.pipelines.put_version("triage", V1, SPEC)
    store.pipelines.put_version("triage", V2, SPEC)
    store.pipelines.put_version("triage", V1, SPEC)  # already there: not a new push
    assert store.pipelines.latest("triage").version == V2
    assert [v.version for v in store.pipelines.list_versions("triage")] == [V2, V1]


def test_unknown_pipeline_everywhere(store: Store) -> None:
    for call in (
        lambda: store.pipelines.latest("ghost"),
        lambda: store.pipelines.list_versions("ghost"),
        lambda: store.pipelines.labels("ghost"),
        lambda: store.pipelines.resolve_label("ghost", "production"),
        lambda: store.pipelines.set_label("ghost", "production", V1),
    ):
        with pytest.raises(NotFoundError) as info:
            call()
        assert info.value.code == "pipeline_not_found"


def test_set_label_moves_and_returns_previous(store: Store) -> None:
    store.pipelines.put_version("triage", V1, SPEC)
    store.pipelines.put_version("triage", V2, SPEC)
    assert store.pipelines.set_label("triage", "production", V1) is None
    assert store.pipelines.set_label("triage", "production", "1a2b3c99") == V1
    assert store.pipelines.resolve_label("triage", "production") == V2
    store.pipelines.set_label("triage", "staging", V1)
    assert store.pipelines.labels("triage") == {"production": V2, "staging": V1}


def test_missing_label(store: Store) -> None:
    store.pipelines.put_version("triage", V1, SPEC)
    with pytest.raises(NotFoundError) as info:
        store.pipelines.resolve_label("triage", "production")
    assert info.value.code == "label_not_found"
    assert store.pipelines.labels("triage") == {}


@pytest.mark.parametrize("label", ["", "Production", "-x", "a b", "x" * 65, "é"])
def test_invalid_label_changes_nothing(store: Store, label: str) -> None:
    store.pipelines.put_version("triage", V1, SPEC)
    store.pipelines.set_label("triage", "production", V1)
    with pytest.raises(InvalidInputError) as info:
        store.pipelines.set_label("triage", label, V1)
    assert info.value.code == "label_invalid"
    assert store.pipelines.labels("triage") == {"production": V1}


def test_label_to_unknown_version_changes_nothing(store: Store) -> None:
    store.pipelines.put_version("triage", V1, SPEC)
    store.pipelines.set_label("triage", "production", V1)
    with pytest.raises(NotFoundError) as info:
        store.pipelines.set_label("triage", "production", V3)
    assert info.value.code == "version_not_found"
    assert store.pipelines.labels("triage") == {"production": V1}


def test_valid_label_names(store: Store) -> None:
    store.pipelines.put_version("triage", V1, SPEC)
    for label in ("production", "canary-2", "v1.2_rc", "0", "x" * 64):
        store.pipelines.set_label("triage", label, V1)
    assert len(store.pipelines.labels("triage")) == 5


def test_list_pipelines_summarises(store: Store) -> None:
    store.pipelines.put_version("triage", V1, SPEC)
    store.pipelines.put_version("triage", V2, SPEC)
    store.pipelines.set_label("triage", "production", V1)
    store.pipelines.put_version("summarize", V3, SPEC)
    summaries = store.pipelines.list_pipelines()
    assert [s.name for s in summaries] == ["summarize", "triage"]
    triage = summaries[1]
    assert triage.latest_version == V2
    assert triage.version_count == 2
    assert triage.labels == {"production": V1}
    assert triage.updated_at.tzinfo is not None
    assert summaries[0].labels == {}


def test_names_are_checked(store: Store) -> None:
    with pytest.raises(InvalidInputError) as info:
        store.pipelines.put_version("", V1, SPEC)
    assert info.value.code == "pipeline_name_invalid"
    with pytest.raises(InvalidInputError) as info:
        store.pipelines.put_version("p", "", SPEC)
    assert info.value.code == "version_invalid"


def test_concurrent_pushes_and_label_moves(store: Store) -> None:
    versions = [f"{i:02x}" * 32 for i in range(40)]
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for version in versions[offset::4]:
                store.pipelines.put_version("busy", version, {"v": version})
                store.pipelines.set_label("busy", "production", version)
                store.audit.record("t", "label.set", "busy/production", {"to": version})
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.pipelines.list_versions("busy")) == 40
    assert store.pipelines.resolve_label("busy", "production") in versions
    assert len(store.audit.list(limit=100)) == 40
