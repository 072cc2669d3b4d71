"""Versions: the same spec always hashes the same; any answer-shaping change moves the hash."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from keel.core.spec import PipelineSpec
from keel.core.version import compute_version, spec_diff

BASE: dict[str, Any] = {
    "name": "triage",
    "description": "routes tickets",
    "prompt": {"system": "You route.", "user": "{{ body }}", "examples": []},
    "model": {"id": "openai:gpt-4o-mini", "params": {"temperature": 0.2, "max_tokens": 64}},
    "output": {
        "type": "label",
        "labels": {"billing": {"threshold": 0.6}, "tech": {"threshold": 0.5}},
        "default_decision": "human",
    },
    "thresholds": {"escalate": 0.8},
}

text = st.text(min_size=1, max_size=30)
prob = st.floats(min_value=0, max_value=1, allow_nan=False)

# Each mutation changes one thing that shapes the answer.
MUTATIONS = st.one_of(
    st.tuples(st.just(("prompt", "system")), text),
    st.tuples(st.just(("prompt", "user")), text),
    st.tuples(st.just(("model", "id")), text.map(lambda t: f"openai:{t}")),
    st.tuples(st.just(("model", "params", "temperature")), st.floats(0, 2, allow_nan=False)),
    st.tuples(st.just(("model", "params", "max_tokens")), st.integers(1, 10_000)),
    st.tuples(st.just(("output", "labels", "billing", "threshold")), prob),
    st.tuples(st.just(("output", "default_decision")), text),
    st.tuples(st.just(("thresholds", "escalate")), prob),
)


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _get(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def version_of(data: dict[str, Any]) -> str:
    return compute_version(PipelineSpec.model_validate(data))


def test_version_is_twelve_hex_digits() -> None:
    version = version_of(BASE)
    assert len(version) == 12
    int(version, 16)


@given(st.permutations(list(BASE)))
def test_same_spec_same_version_whatever_the_key_order(order: list[str]) -> None:
    reordered = {key: copy.deepcopy(BASE[key]) for key in order}
    assert version_of(reordered) == version_of(BASE)


@given(MUTATIONS)
def test_any_answer_shaping_change_moves_the_version(mutation: tuple[tuple[str, ...], Any]) -> None:
    path, value = mutation
    changed = _set(BASE, path, value)
    before = PipelineSpec.model_validate(BASE).model_dump(mode="json", by_alias=True)
    after = PipelineSpec.model_validate(changed).model_dump(mode="json", by_alias=True)
    if _get(before, path) == _get(after, path):
        return  # hypothesis drew the value already there: nothing changed
    assert version_of(changed) != version_of(BASE)


@given(st.text(max_size=50), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
def test_description_and_metadata_do_not_change_the_version(desc: str, meta: dict) -> None:
    assert version_of({**BASE, "description": desc, "metadata": meta}) == version_of(BASE)


def test_diff_lists_changed_fields_and_template_lines() -> None:
    old = PipelineSpec.model_validate(BASE).hashable()
    new_data = _set(BASE, ("prompt", "user"), "Ticket:\n{{ body }}\nAnswer now.")
    new_data = _set(new_data, ("model", "params", "temperature"), 0.7)
    lines = spec_diff(old, PipelineSpec.model_validate(new_data).hashable())
    assert "~ model.params.temperature: 0.2 -> 0.7" in lines
    assert "~ prompt.user:" in lines
    assert any(line.strip() == "+Answer now." for line in lines)
    assert spec_diff(old, old) == []


def test_spelling_out_a_default_does_not_change_the_version() -> None:
    explicit = _set(BASE, ("model", "fallbacks"), [])
    explicit = _set(explicit, ("output", "constrain"), True)
    assert version_of(explicit) == version_of(BASE)
