"""The sans-IO Server-Sent Events parser and encoder."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from keel.core.sse import SSEEvent, SSEParser, encode_comment


def parse(*chunks: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events + parser.close()


def parse_bytewise(data: bytes) -> list[SSEEvent]:
    return parse(*(data[i : i + 1] for i in range(len(data))))


def test_fields_of_one_event() -> None:
    data = b"event: update\nid: 42\nretry: 1500\ndata: hello\n\n"
    assert parse(data) == [SSEEvent("hello", event="update", id="42", retry=1500)]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert parse(b"data: first\ndata:\ndata:  third\n\n") == [SSEEvent("first\n\n third")]


def test_only_one_space_after_the_colon_is_removed() -> None:
    assert parse(b"data:no space\n\ndata:   three\n\n") == [
        SSEEvent("no space"),
        SSEEvent("  three"),
    ]


@pytest.mark.parametrize("newline", [b"\n", b"\r", b"\r\n"])
def test_every_line_ending(newline: bytes) -> None:
    data = newline.join([b"event: a", b"data: 1", b"", b"data: 2", b"", b""])
    assert parse(data) == [SSEEvent("1", event="a"), SSEEvent("2")]
    assert parse_bytewise(data) == [SSEEvent("1", event="a"), SSEEvent("2")]


def test_crlf_split_across_chunks_is_one_line_ending() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n\r") == [SSEEvent("a")]
    assert parser.feed(b"\ndata: b\r\n\r\n") == [SSEEvent("b")]


def test_comments_are_ignored() -> None:
    assert parse(b": keep-alive\n\n:another\ndata: x\n: inline\n\n") == [SSEEvent("x")]


def test_blocks_without_data_dispatch_nothing() -> None:
    assert parse(b"event: ping\n\nid: 7\n\nretry: 10\n\n") == []


def test_unknown_fields_and_bad_values_are_ignored() -> None:
    data = b"foo: bar\nretry: soon\nretry: \xc2\xb2\nid: a\x00b\ndata\n\n"
    assert parse(data) == [SSEEvent("")]


def test_a_line_without_colon_is_a_field_with_empty_value() -> None:
    assert parse(b"data\ndata\n\n") == [SSEEvent("\n")]


def test_last_event_id_persists_but_each_event_reports_its_own() -> None:
    parser = SSEParser()
    events = parser.feed(b"id: 1\ndata: a\n\ndata: b\n\n")
    assert [event.id for event in events] == ["1", None]
    assert parser.last_event_id == "1"


def test_final_event_needs_close() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: done\n") == []
    assert parser.feed(b"data: partial line") == []
    assert parser.close() == [SSEEvent("done\npartial line")]
    assert parser.close() == []


def test_utf8_split_inside_a_character() -> None:
    data = "data: héllo ☀ 🚀\n\n".encode()
    assert parse_bytewise(data) == [SSEEvent("héllo ☀ 🚀")]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert parse(b"data: \xff\xfe\n\n") == [SSEEvent("\ufffd\ufffd")]


def test_leading_byte_order_mark_is_dropped_even_when_split() -> None:
    assert parse(b"\xef", b"\xbb", b"\xbfdata: x\n\n") == [SSEEvent("x")]
    assert parse(b"\xef\xbb\xbfdata: y") == [SSEEvent("y")]


def test_openai_style_stream() -> None:
    data = b'data: {"a": 1}\n\ndata: {"a": 2}\n\ndata: [DONE]\n\n'
    assert [event.data for event in parse_bytewise(data)] == ['{"a": 1}', '{"a": 2}', "[DONE]"]


def test_encode_writes_only_the_fields_that_are_set() -> None:
    assert SSEEvent("x").encode() == b"data: x\n\n"
    assert SSEEvent("a\r\nb", event="e", id="", retry=0).encode() == (
        b"event: e\nid: \nretry: 0\ndata: a\ndata: b\n\n"
    )
    assert encode_comment("ping") == b": ping\n\n"


@pytest.mark.parametrize(
    "event",
    [
        SSEEvent("x", event="a\nb"),
        SSEEvent("x", id="1\r2"),
        SSEEvent("x", id="nul\x00"),
        SSEEvent("x", retry=-1),
    ],
)
def test_encode_refuses_what_cannot_be_represented(event: SSEEvent) -> None:
    with pytest.raises(ValueError, match="SSE"):
        event.encode()


# --- properties -----------------------------------------------------------------------

_line_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\x00")
)
_events = st.builds(
    SSEEvent,
    data=st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r")),
    event=_line_text.filter(bool) | st.just("message"),
    id=st.none() | _line_text,
    retry=st.none() | st.integers(min_value=0, max_value=2**40),
)
_newlines = st.sampled_from([b"\n", b"\r", b"\r\n"])


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    return [data[start:end] for start, end in zip([0, *points], [*points, len(data)], strict=True)]


@given(st.lists(_events, max_size=8), _newlines, st.lists(st.integers(min_value=0), max_size=20))
@example([SSEEvent("a")], b"\r\n", [8])  # the "\r" / "\n" pair split between chunks
def test_any_split_yields_the_events_that_were_encoded(
    events: list[SSEEvent], newline: bytes, cuts: list[int]
) -> None:
    data = b"".join(event.encode() for event in events).replace(b"\n", newline)
    assert parse(*_split(data, cuts)) == events


_sse_like_bytes = st.lists(
    st.sampled_from(
        [
            *(b"\r", b"\n", b"\r\n", b":", b" ", b"7", b"x", b"\x00"),
            *(b"data:", b"event:", b"id:", b"retry:", b"\xef\xbb\xbf", "é".encode()),
        ]
    ),
    max_size=60,
).map(b"".join)


@given(st.binary(max_size=300) | _sse_like_bytes, st.lists(st.integers(min_value=0), max_size=30))
@example(b"data:\r\ndata:", [6])  # "\r" ends one chunk, "\n" starts the next
def test_any_split_of_any_bytes_matches_feeding_them_whole(data: bytes, cuts: list[int]) -> None:
    assert parse(*_split(data, cuts)) == parse(data)


@given(st.lists(_events, min_size=1, max_size=5))
def test_stream_ending_without_blank_line_still_yields_the_last_event_on_close(
    events: list[SSEEvent],
) -> None:
    data = b"".join(event.encode() for event in events)
    assert parse(data[:-1]) == events  # the final "\n" of the blank line is missing
    assert parse(data[:-2]) == events  # the final line is unterminated too
