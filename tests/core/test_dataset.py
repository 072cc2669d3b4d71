"""Dataset files: every bad row is reported with its number, and a bad file yields nothing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.core.dataset import (
    DatasetFormatError,
    DatasetItem,
    content_hash,
    parse_csv,
    parse_file,
    parse_jsonl,
)
from keel.core.errors import InvalidInputError


def test_jsonl_rows_become_items() -> None:
    text = "\n".join(
        [
            json.dumps({"id": "a", "input": {"q": "hi"}, "expected": "hello", "tags": ["x"]}),
            "",
            json.dumps({"input": "plain", "label": "billing", "metadata": {"src": "t"}}),
        ]
    )
    first, second = parse_jsonl(text)
    assert (first.item_id, first.input, first.expected, first.tags) == (
        "a",
        {"q": "hi"},
        "hello",
        ("x",),
    )
    assert (second.item_id, second.label, dict(second.metadata)) == (
        "item-3",
        "billing",
        {"src": "t"},
    )


def test_every_bad_row_is_reported_by_number() -> None:
    text = "\n".join(
        [
            json.dumps({"input": {"q": 1}}),
            "{not json",
            json.dumps({"expected": "no input"}),
            json.dumps({"input": "x", "label": 7}),
            json.dumps({"input": "x", "tags": "not-a-list"}),
            json.dumps({"input": "x", "colour": "red"}),
            json.dumps([1, 2]),
            json.dumps({"id": "item-1", "input": "duplicate of row 1's generated id"}),
        ]
    )
    with pytest.raises(DatasetFormatError) as info:
        parse_jsonl(text, "cases.jsonl")
    rows = {e.row: e.message for e in info.value.errors}
    assert set(rows) == {2, 3, 4, 5, 6, 7, 8}
    assert "not valid JSON" in rows[2]
    assert "missing field 'input'" in rows[3]
    assert "label" in rows[4] and "string" in rows[4]
    assert "tags" in rows[5]
    assert "unknown field 'colour'" in rows[6]
    assert "JSON object" in rows[7]
    assert "duplicate id 'item-1'" in rows[8]
    assert info.value.code == "dataset_rows_invalid"
    assert "nothing imported" in info.value.message
    assert [r["row"] for r in info.value.details["rows"]] == sorted(rows)


def test_csv_columns_become_the_input_object() -> None:
    text = (
        "id,subject,body,label,tags\n"
        "t1,Charged twice,Card billed,billing,a;b\n"
        "t2,Crash,App dies,technical,\n"
    )
    first, second = parse_csv(text)
    assert first.input == {"subject": "Charged twice", "body": "Card billed"}
    assert (first.label, first.tags) == ("billing", ("a", "b"))
    assert second.tags == ()


def test_csv_input_column_holds_json_or_text() -> None:
    text = 'input,expected,metadata\n"{""q"": 1}",one,\nplain words,two,"{""k"": 2}"\n'
    first, second = parse_csv(text)
    assert first.input == {"q": 1} and second.input == "plain words"
    assert dict(second.metadata) == {"k": 2}


def test_csv_ragged_and_bad_json_rows_are_reported() -> None:
    text = "input,metadata\nok,\nextra,{},surplus\nbad,{oops\n"
    with pytest.raises(DatasetFormatError) as info:
        parse_csv(text, "cases.csv")
    rows = {e.row: e.message for e in info.value.errors}
    assert set(rows) == {3, 4}
    assert "more cells" in rows[3] and "metadata" in rows[4]


def test_empty_and_unknown_files_are_errors() -> None:
    with pytest.raises(InvalidInputError, match="no rows"):
        parse_jsonl("\n\n")
    with pytest.raises(InvalidInputError) as info:
        parse_file("cases.xlsx", "")
    assert info.value.code == "dataset_format_unknown"


def test_content_hash_follows_content_and_order() -> None:
    a = parse_jsonl('{"input": 1}\n{"input": 2}')
    b = parse_jsonl('{"input": 1}\n{"input": 2}')
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(list(reversed(a)))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_items = st.lists(
    st.builds(
        DatasetItem,
        item_id=st.text(
            alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=12
        ),
        input=_json.filter(lambda v: v is not None),
        expected=_json,
        label=st.none() | st.text(max_size=10),
        tags=st.lists(st.text(max_size=6), max_size=3).map(tuple),
        metadata=st.dictionaries(st.text(max_size=6), _json, max_size=3),
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda item: item.item_id,
)


@given(_items)
def test_export_then_import_round_trips(items: list[DatasetItem]) -> None:
    text = "".join(json.dumps(item.to_dict(), ensure_ascii=False) + "\n" for item in items)
    assert parse_jsonl(text) == items
