"""Pipelines, their immutable versions and the labels that point at them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from keel.core.errors import InvalidInputError, NotFoundError
from keel.store.dialects import insert_or_ignore, upsert
from keel.store.schema import pipeline_labels, pipeline_versions, pipelines

LABEL_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
MIN_PREFIX = 6
_HEX_PREFIX = re.compile(r"[0-9a-f]{6,128}")
_MAX_NAME = 200
_MAX_VERSION = 128


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One immutable pipeline version as stored."""

    name: str
    version: str
    spec: dict[str, Any]
    created_at: datetime
    created_by: str | None


@dataclass(frozen=True, slots=True)
class PipelineSummary:
    """A pipeline at a glance: its newest version, how many it has and its labels."""

    name: str
    latest_version: str | None
    version_count: int
    labels: dict[str, str]
    updated_at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


def _check_name(name: str) -> None:
    if not name or len(name) > _MAX_NAME:
        msg = f"Pipeline name {name!r} must be 1 to {_MAX_NAME} characters long"
        raise InvalidInputError(msg, code="pipeline_name_invalid", pipeline=name)


def _check_version(version: str) -> None:
    if not version or len(version) > _MAX_VERSION:
        msg = f"Version {version!r} must be 1 to {_MAX_VERSION} characters long"
        raise InvalidInputError(msg, code="version_invalid", version=version)


def _check_label(label: str) -> None:
    if not LABEL_PATTERN.fullmatch(label):
        msg = (
            f"Label {label!r} is not a valid label name; use 1 to 64 lowercase letters, "
            "digits, '_', '.' or '-', starting with a letter or digit (e.g. 'production')"
        )
        raise InvalidInputError(msg, code="label_invalid", label=label)


def _pipeline_not_found(name: str) -> NotFoundError:
    msg = f"No pipeline named {name!r}; `keel pipelines list` shows the pipelines pushed"
    return NotFoundError(msg, code="pipeline_not_found", pipeline=name)


def _to_version(row: Row[Any]) -> StoredVersion:
    return StoredVersion(
        name=row.pipeline,
        version=row.version,
        spec=row.spec,
        created_at=row.created_at,
        created_by=row.created_by,
    )


class PipelineRepository:
    """Stores pipeline versions (immutable, content-addressed) and labels (mutable pointers)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def put_version(
        self, name: str, version: str, spec: dict[str, Any], *, created_by: str | None = None
    ) -> bool:
        """Store a version; True if it is new, False if ``(name, version)`` was already there.

        The version is a content hash, so the spec first stored under it is kept.
        """
        _check_name(name)
        _check_version(version)
        now = _now()
        with self._engine.begin() as conn:
            # Writes come first so SQLite takes its write lock before anything is read.
            conn.execute(
                insert_or_ignore(conn.dialect, pipelines),
                {"name": name, "created_at": now, "updated_at": now},
            )
            # RETURNING, not rowcount: drivers disagree on rowcount after ON CONFLICT.
            inserted = conn.execute(
                insert_or_ignore(conn.dialect, pipeline_versions).returning(pipeline_versions.c.id),
                {
                    "pipeline": name,
                    "version": version,
                    "spec": spec,
                    "created_at": now,
                    "created_by": created_by,
                },
            )
            created = inserted.first() is not None
            if created:
                conn.execute(
                    sa.update(pipelines).where(pipelines.c.name == name).values(updated_at=now)
                )
        return created

    def get_version(self, name: str, version: str) -> StoredVersion:
        """The version named ``version`` or by a unique prefix of at least six hex digits."""
        with self._engine.connect() as conn:
            return _to_version(_resolve_version(conn, name, version))

    def latest(self, name: str) -> StoredVersion:
        """The version pushed most recently."""
        query = (
            sa.select(pipeline_versions)
            .where(pipeline_versions.c.pipeline == name)
            .order_by(pipeline_versions.c.id.desc())
            .limit(1)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
            if row is None:
                _require_pipeline(conn, name)
                msg = f"Pipeline {name!r} has no versions yet; push one first"
                raise NotFoundError(msg, code="version_not_found", pipeline=name)
        return _to_version(row)

    def list_versions(self, name: str) -> list[StoredVersion]:
        """Every version of ``name``, newest first."""
        query = (
            sa.select(pipeline_versions)
            .where(pipeline_versions.c.pipeline == name)
            .order_by(pipeline_versions.c.id.desc())
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
            if not rows:
                _require_pipeline(conn, name)
        return [_to_version(row) for row in rows]

    def list_pipelines(self) -> list[PipelineSummary]:
        """All pipelines by name, each with its newest version, version count and labels."""
        v = pipeline_versions
        counts = (
            sa.select(v.c.pipeline, sa.func.count().label("n"), sa.func.max(v.c.id).label("last"))
            .group_by(v.c.pipeline)
            .subquery()
        )
        query = (
            sa.select(pipelines.c.name, pipelines.c.updated_at, counts.c.n, v.c.version)
            .outerjoin(counts, counts.c.pipeline == pipelines.c.name)
            .outerjoin(v, v.c.id == counts.c.last)
            .order_by(pipelines.c.name)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
            label_rows = conn.execute(sa.select(pipeline_labels)).all()
        labels: dict[str, dict[str, str]] = {}
        for label_row in label_rows:
            labels.setdefault(label_row.pipeline, {})[label_row.label] = label_row.version
        return [
            PipelineSummary(
                name=row.name,
                latest_version=row.version,
                version_count=row.n or 0,
                labels=labels.get(row.name, {}),
                updated_at=row.updated_at,
            )
            for row in rows
        ]

    def set_label(self, name: str, label: str, version: str) -> str | None:
        """Point ``label`` at ``version`` (or a unique prefix); returns the previous version."""
        _check_label(label)
        with self._engine.begin() as conn:
            return move_label(conn, name, label, version)[1]

    def resolve_label(self, name: str, label: str) -> str:
        """The version ``label`` points at."""
        query = sa.select(pipeline_labels.c.version).where(
            pipeline_labels.c.pipeline == name, pipeline_labels.c.label == label
        )
        with self._engine.connect() as conn:
            version = conn.scalar(query)
            if version is None:
                _require_pipeline(conn, name)
                msg = (
                    f"Pipeline {name!r} has no label {label!r}; set it with "
                    f"`keel pipelines label {name} {label} <version>`"
                )
                raise NotFoundError(msg, code="label_not_found", pipeline=name, label=label)
        return str(version)

    def labels(self, name: str) -> dict[str, str]:
        """Every label of ``name`` and the version it points at."""
        query = (
            sa.select(pipeline_labels.c.label, pipeline_labels.c.version)
            .where(pipeline_labels.c.pipeline == name)
            .order_by(pipeline_labels.c.label)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
            if not rows:
                _require_pipeline(conn, name)
        return {row.label: row.version for row in rows}


def _require_pipeline(conn: Connection, name: str) -> None:
    exists = conn.scalar(sa.select(pipelines.c.name).where(pipelines.c.name == name))
    if exists is None:
        raise _pipeline_not_found(name)


def _resolve_version(conn: Connection, name: str, version: str) -> Row[Any]:
    v = pipeline_versions
    exact = conn.execute(sa.select(v).where(v.c.pipeline == name, v.c.version == version)).first()
    if exact is not None:
        return exact
    prefix = version.lower()
    if _HEX_PREFIX.fullmatch(prefix):
        matches = conn.execute(
            sa.select(v)
            .where(v.c.pipeline == name, v.c.version.startswith(prefix, autoescape=True))
            .order_by(v.c.id.desc())
            .limit(5)
        ).all()
        if len(matches) == 1:
            return matches[0]
        if matches:
            candidates = [row.version for row in matches]
            listed = ", ".join(c[:12] for c in candidates)
            msg = (
                f"Version prefix {version!r} of pipeline {name!r} matches several versions "
                f"({listed}{', …' if len(candidates) == 5 else ''}); give more characters"
            )
            raise InvalidInputError(
                msg, code="version_ambiguous", pipeline=name, candidates=candidates
            )
    _require_pipeline(conn, name)
    short = len(version) < MIN_PREFIX
    hint = f" (a prefix needs at least {MIN_PREFIX} hex digits)" if short else ""
    msg = (
        f"Pipeline {name!r} has no version {version!r}{hint}; "
        f"`keel pipelines versions {name}` lists them"
    )
    raise NotFoundError(msg, code="version_not_found", pipeline=name, version=version)


def move_label(conn: Connection, name: str, label: str, version: str) -> tuple[str, str | None]:
    """Point ``label`` at ``version`` inside the caller's transaction: (target, previous)."""
    now = _now()
    # The update takes the write lock (SQLite) or row lock (Postgres) first, so two
    # concurrent moves of one pipeline's labels each see the other's result.
    touched = conn.execute(
        sa.update(pipelines)
        .where(pipelines.c.name == name)
        .values(updated_at=now)
        .returning(pipelines.c.name)
    ).first()
    if touched is None:
        raise _pipeline_not_found(name)
    target = _resolve_version(conn, name, version).version
    previous = conn.scalar(
        sa.select(pipeline_labels.c.version).where(
            pipeline_labels.c.pipeline == name, pipeline_labels.c.label == label
        )
    )
    conn.execute(
        upsert(
            conn.dialect,
            pipeline_labels,
            ["pipeline", "label"],
            {"version": target, "updated_at": now},
        ),
        {"pipeline": name, "label": label, "version": target, "updated_at": now},
    )
    return target, previous
