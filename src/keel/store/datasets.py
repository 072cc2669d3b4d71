"""Evaluation datasets: immutable, numbered versions of ordered items.

Every import or change writes a new version (``name@1``, ``name@2``, …); a version is never
edited, so an eval run that names ``name@3`` can always be reproduced. Items of a version
are written in one transaction: a version either has all its items or does not exist.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from keel.core.dataset import DatasetItem, content_hash
from keel.core.errors import ConflictError, InvalidInputError, NotFoundError
from keel.store.schema import dataset_items, datasets

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
_INSERT_CHUNK = 500


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    name: str
    version: int
    source: str
    description: str | None
    item_count: int
    content_hash: str
    created_at: datetime
    created_by: str | None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "description": self.description,
            "items": self.item_count,
            "content_hash": self.content_hash,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


def parse_ref(text: str) -> tuple[str, int | None]:
    """``NAME`` (newest version) or ``NAME@N``."""
    name, _, at = text.partition("@")
    if not at:
        return name, None
    if not at.isdigit():
        msg = f"{text!r}: a dataset version is a number, e.g. {name}@1"
        raise InvalidInputError(msg, code="dataset_ref_invalid")
    return name, int(at)


def _check_name(name: str) -> None:
    if not NAME_PATTERN.fullmatch(name):
        msg = (
            f"Dataset name {name!r} is invalid; use 1 to 200 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
        raise InvalidInputError(msg, code="dataset_name_invalid", dataset=name)


def _to_version(row: Row[Any]) -> DatasetVersion:
    return DatasetVersion(
        name=row.name,
        version=row.version,
        source=row.source,
        description=row.description,
        item_count=row.item_count,
        content_hash=row.content_hash,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _to_item(row: Row[Any]) -> DatasetItem:
    return DatasetItem(
        item_id=row.item_id,
        input=row.input,
        expected=row.expected,
        label=row.label,
        tags=tuple(row.tags),
        metadata=row.metadata,
    )


class DatasetRepository:
    """Creates dataset versions and reads them back."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create_version(
        self,
        name: str,
        items: Sequence[DatasetItem],
        *,
        source: str,
        description: str | None = None,
        created_by: str | None = None,
    ) -> DatasetVersion:
        """Store ``items`` as the next version of ``name`` (all of them, or nothing)."""
        try:
            with self._engine.begin() as conn:
                version = _write_version(conn, name, items, source, description, created_by)
        except IntegrityError as exc:
            msg = f"another version of dataset {name!r} was created at the same time; retry"
            raise ConflictError(msg, code="dataset_version_race", dataset=name) from exc
        return self.get(name, version)

    def add_items(
        self, name: str, items: Sequence[DatasetItem], *, source: str, created_by: str | None = None
    ) -> DatasetVersion:
        """A new version holding the newest version's items plus ``items`` (ids must be new).

        This is the entry point for items promoted from elsewhere (e.g. approved feedback).
        """
        try:
            with self._engine.begin() as conn:
                _find(conn, name, None)  # adding to a dataset that does not exist is an error
                version = append_version(conn, name, items, source=source, created_by=created_by)
        except IntegrityError as exc:
            msg = f"another version of dataset {name!r} was created at the same time; retry"
            raise ConflictError(msg, code="dataset_version_race", dataset=name) from exc
        return self.get(name, version)

    def get(self, name: str, version: int | None = None) -> DatasetVersion:
        """A version by number, or the newest when ``version`` is None."""
        with self._engine.connect() as conn:
            return _to_version(_find(conn, name, version))

    def items(self, name: str, version: int | None = None) -> builtins.list[DatasetItem]:
        with self._engine.connect() as conn:
            dataset_id = _find(conn, name, version).id
            rows = conn.execute(
                sa.select(dataset_items)
                .where(dataset_items.c.dataset_id == dataset_id)
                .order_by(dataset_items.c.position)
            ).all()
        return [_to_item(row) for row in rows]

    def list(self) -> list[DatasetVersion]:
        """The newest version of every dataset, by name."""
        newest = (
            sa.select(datasets.c.name, sa.func.max(datasets.c.version).label("v"))
            .group_by(datasets.c.name)
            .subquery()
        )
        query = (
            sa.select(datasets)
            .join(
                newest, sa.and_(newest.c.name == datasets.c.name, newest.c.v == datasets.c.version)
            )
            .order_by(datasets.c.name)
        )
        with self._engine.connect() as conn:
            return [_to_version(row) for row in conn.execute(query)]

    def versions(self, name: str) -> builtins.list[DatasetVersion]:
        """Every version of ``name``, newest first."""
        query = (
            sa.select(datasets).where(datasets.c.name == name).order_by(datasets.c.version.desc())
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            raise _not_found(name, None)
        return [_to_version(row) for row in rows]


def _write_version(
    conn: Connection,
    name: str,
    items: Sequence[DatasetItem],
    source: str,
    description: str | None,
    created_by: str | None,
) -> int:
    _check_name(name)
    if not items:
        raise InvalidInputError("a dataset version needs at least one item", code="dataset_empty")
    latest = conn.scalar(sa.select(sa.func.max(datasets.c.version)).where(datasets.c.name == name))
    values: dict[str, Any] = {
        "name": name,
        "version": int(latest or 0) + 1,
        "source": source,
        "description": description,
        "item_count": len(items),
        "content_hash": content_hash(items),
        "created_at": datetime.now(UTC),
        "created_by": created_by,
    }
    dataset_id = conn.execute(sa.insert(datasets).returning(datasets.c.id), values).scalar_one()
    _insert_items(conn, dataset_id, items)
    return int(values["version"])


def append_version(
    conn: Connection,
    name: str,
    items: Sequence[DatasetItem],
    *,
    source: str,
    created_by: str | None = None,
) -> int:
    """Inside ``conn``'s transaction: the next version of ``name`` = its newest items plus
    ``items`` (a dataset that does not exist yet starts at version 1). Item ids must be new."""
    current: list[DatasetItem] = []
    found = conn.execute(
        sa.select(datasets.c.id)
        .where(datasets.c.name == name)
        .order_by(datasets.c.version.desc())
        .limit(1)
    ).first()
    if found is not None:
        rows = conn.execute(
            sa.select(dataset_items)
            .where(dataset_items.c.dataset_id == found.id)
            .order_by(dataset_items.c.position)
        ).all()
        current = [_to_item(row) for row in rows]
    known = {item.item_id for item in current}
    clash = sorted(item.item_id for item in items if item.item_id in known)
    if clash:
        msg = f"dataset {name!r} already has item(s) {', '.join(clash[:10])}"
        raise ConflictError(msg, code="dataset_item_exists", items=clash)
    return _write_version(conn, name, [*current, *items], source, None, created_by)


def _insert_items(conn: Connection, dataset_id: int, items: Sequence[DatasetItem]) -> None:
    rows = [
        {
            "dataset_id": dataset_id,
            "position": position,
            "item_id": item.item_id,
            "input": item.input,
            "expected": item.expected,
            "label": item.label,
            "tags": list(item.tags),
            "metadata": dict(item.metadata),
        }
        for position, item in enumerate(items)
    ]
    for start in range(0, len(rows), _INSERT_CHUNK):
        conn.execute(sa.insert(dataset_items), rows[start : start + _INSERT_CHUNK])


def _find(conn: Connection, name: str, version: int | None) -> Row[Any]:
    query = sa.select(datasets).where(datasets.c.name == name)
    if version is None:
        query = query.order_by(datasets.c.version.desc()).limit(1)
    else:
        query = query.where(datasets.c.version == version)
    row = conn.execute(query).first()
    if row is None:
        raise _not_found(name, version)
    return row


def _not_found(name: str, version: int | None) -> NotFoundError:
    if version is None:
        msg = f"No dataset named {name!r}; `keel datasets list` shows the datasets stored"
    else:
        msg = f"Dataset {name!r} has no version {version}; `keel datasets show {name}` lists them"
    return NotFoundError(msg, code="dataset_not_found", dataset=name, version=version)
