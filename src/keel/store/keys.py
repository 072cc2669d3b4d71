"""API key records: only the SHA-256 of a key is stored, never the key itself."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from keel.core.errors import ConflictError, NotFoundError
from keel.store.schema import api_keys


@dataclass(frozen=True, slots=True)
class StoredKey:
    id: str
    name: str
    role: str
    scopes: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    limits: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    created_by: str | None = None
    revoked_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "scopes": self.scopes,
            "groups": self.groups,
            "limits": self.limits,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "created_by": self.created_by,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _row(row: Any) -> StoredKey:
    return StoredKey(
        id=row.id,
        name=row.name,
        role=row.role,
        scopes=dict(row.scopes or {}),
        groups=list(row.groups or []),
        limits=dict(row.limits or {}),
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
    )


class KeyRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, key: StoredKey, key_hash: str) -> StoredKey:
        created = key.created_at or datetime.now(UTC)
        values = {
            "id": key.id,
            "name": key.name,
            "key_hash": key_hash,
            "role": key.role,
            "scopes": key.scopes,
            "groups": key.groups,
            "limits": key.limits,
            "created_at": created,
            "created_by": key.created_by,
            "revoked_at": None,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(api_keys), values)
        except IntegrityError as exc:
            raise ConflictError(f"an API key with id {key.id!r} exists", code="key_exists") from exc
        return self.get(key.id)

    def get(self, key_id: str) -> StoredKey:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None:
            raise NotFoundError(
                f"no API key with id {key_id!r}; `keel keys list` shows them", code="key_not_found"
            )
        return _row(row)

    def by_hash(self, key_hash: str) -> StoredKey | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        return _row(row) if row is not None else None

    def list(self, *, include_revoked: bool = False) -> builtins.list[StoredKey]:
        query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self._engine.connect() as conn:
            return [_row(row) for row in conn.execute(query)]

    def revoke(self, key_id: str) -> StoredKey:
        """Mark a key revoked (idempotent); its record stays for the audit trail."""
        self.get(key_id)
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        return self.get(key_id)
