"""Dataset items and the parsers that turn JSONL or CSV into them, checking every row.

A row is ``{"id"?, "input", "expected"?, "label"?, "tags"?, "metadata"?}``. Parsing never
stops at the first bad row: every problem is collected with its row number, and a file with
any problem yields no items at all (``DatasetFormatError`` lists them), so nothing is ever
partially imported.

CSV has two shapes: an ``input`` column holding JSON (or plain text), or no ``input`` column,
in which case every column that is not ``id``/``expected``/``label``/``tags``/``metadata``
becomes a string field of the input object. ``tags`` are separated by ``;`` and ``metadata``
is a JSON object.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from keel.core.errors import InvalidInputError

RESERVED_COLUMNS = ("id", "input", "expected", "label", "tags", "metadata")
MAX_ROW_ERRORS_SHOWN = 20


@dataclass(frozen=True, slots=True)
class DatasetItem:
    """One case: the pipeline input, what a good answer is (text/value or label), tags."""

    item_id: str
    input: Any
    expected: Any = None
    label: str | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"id": self.item_id, "input": self.input}
        if self.expected is not None:
            row["expected"] = self.expected
        if self.label is not None:
            row["label"] = self.label
        if self.tags:
            row["tags"] = list(self.tags)
        if self.metadata:
            row["metadata"] = dict(self.metadata)
        return row


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


class DatasetFormatError(InvalidInputError):
    """A dataset file had bad rows; ``details['rows']`` lists each with its row number."""

    code = "dataset_rows_invalid"

    def __init__(self, source: str, errors: Sequence[RowError]) -> None:
        shown = "; ".join(str(e) for e in errors[:MAX_ROW_ERRORS_SHOWN])
        more = len(errors) - MAX_ROW_ERRORS_SHOWN
        suffix = f"; and {more} more" if more > 0 else ""
        super().__init__(
            f"{source}: {len(errors)} bad row(s), nothing imported: {shown}{suffix}",
            rows=[{"row": e.row, "message": e.message} for e in errors],
        )
        self.errors = list(errors)


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: StrictStr | int | None = Field(None)
    input: Any = Field(...)
    expected: Any = None
    label: StrictStr | None = None
    tags: list[StrictStr] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "row"
        kind = err["type"]
        if kind == "missing":
            parts.append(f"missing field {where!r}")
        elif kind == "extra_forbidden":
            parts.append(f"unknown field {where!r} (allowed: {', '.join(RESERVED_COLUMNS)})")
        else:
            parts.append(f"{where}: {err['msg'].lower()}")
    return "; ".join(parts)


def item_from_row(data: Any, row: int) -> DatasetItem:
    """Validate one row; raises ValueError with a readable message."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    try:
        parsed = _Row.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_describe(exc)) from exc
    if parsed.input is None:
        raise ValueError("field 'input' must not be null")
    item_id = str(parsed.id) if parsed.id is not None else f"item-{row}"
    if not item_id or len(item_id) > 200:
        raise ValueError("id must be 1 to 200 characters")
    return DatasetItem(
        item_id=item_id,
        input=parsed.input,
        expected=parsed.expected,
        label=parsed.label,
        tags=tuple(parsed.tags),
        metadata=parsed.metadata,
    )


def check_items(source: str, rows: Iterable[tuple[int, Any]]) -> list[DatasetItem]:
    """Validate every row, then reject the lot if any row (or a duplicate id) is bad."""
    items: list[DatasetItem] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for number, data in rows:
        if isinstance(data, RowError):
            errors.append(data)
            continue
        try:
            item = item_from_row(data, number)
        except ValueError as exc:
            errors.append(RowError(number, str(exc)))
            continue
        if item.item_id in seen:
            errors.append(
                RowError(number, f"duplicate id {item.item_id!r} (row {seen[item.item_id]})")
            )
            continue
        seen[item.item_id] = number
        items.append(item)
    if errors:
        raise DatasetFormatError(source, errors)
    if not items:
        raise InvalidInputError(f"{source} holds no rows", code="dataset_empty")
    return items


def _jsonl_rows(text: str) -> Iterable[tuple[int, Any]]:
    # JSON Lines break on "\n" only: str.splitlines() would also split inside strings that
    # hold U+0085 or U+2028 written unescaped.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, RowError(number, f"not valid JSON ({exc.msg} at column {exc.colno})")


def parse_jsonl(text: str, source: str = "JSONL") -> list[DatasetItem]:
    return check_items(source, _jsonl_rows(text))


def _csv_value(column: str, value: str, has_input: bool) -> Any:
    if column == "tags":
        return [t.strip() for t in value.split(";") if t.strip()]
    if column == "metadata":
        return json.loads(value) if value.strip() else {}
    if column == "input" and has_input:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _csv_row(record: dict[str | None, Any], number: int, has_input: bool) -> Any:
    if None in record:
        return RowError(number, "more cells than header columns")
    if any(v is None for v in record.values()):
        return RowError(number, "fewer cells than header columns")
    data: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    for column, value in record.items():
        assert column is not None
        if column in RESERVED_COLUMNS:
            if value == "" and column != "input":
                continue
            try:
                data[column] = _csv_value(column, value, has_input)
            except json.JSONDecodeError as exc:
                return RowError(number, f"column {column!r} is not valid JSON ({exc.msg})")
        else:
            fields[column] = value
    if not has_input:
        data["input"] = fields
    elif fields:
        names = ", ".join(sorted(fields))
        return RowError(number, f"unknown column(s) {names} next to an 'input' column")
    return data


def parse_csv(text: str, source: str = "CSV") -> list[DatasetItem]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if not header:
        raise InvalidInputError(f"{source} has no header row", code="dataset_empty")
    has_input = "input" in header
    rows = ((reader.line_num, _csv_row(record, reader.line_num, has_input)) for record in reader)
    return check_items(source, rows)


def parse_file(name: str, text: str, fmt: str | None = None) -> list[DatasetItem]:
    """Parse by ``fmt`` (``jsonl`` or ``csv``) or else by the file name's extension."""
    kind = (fmt or name.rsplit(".", 1)[-1]).lower()
    if kind in ("jsonl", "ndjson", "json"):
        return parse_jsonl(text, name)
    if kind == "csv":
        return parse_csv(text, name)
    raise InvalidInputError(
        f"cannot tell the format of {name!r}; use a .jsonl or .csv file or pass --format",
        code="dataset_format_unknown",
    )


def content_hash(items: Sequence[DatasetItem]) -> str:
    """A hash of the items in order: two versions with equal hashes hold the same cases."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps(item.to_dict(), sort_keys=True, default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()
