"""API keys: random secrets shown once, stored as SHA-256, resolved to a ``Principal``.

A key reads ``keel_<id>_<secret>``: the id names the record (for listing and revoking),
the 32-byte secret makes it unguessable. Keys are high-entropy, so one SHA-256 is a
sufficient one-way function; no slow password hash is needed. Verified keys are cached
for ``auth.key_cache_seconds``, so a revocation reaches every replica within that delay.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from keel.core.errors import InvalidInputError
from keel.gateway.errors import Forbidden, Unauthorized
from keel.store.keys import StoredKey

if TYPE_CHECKING:
    from keel.settings import AuthSettings
    from keel.store import Store

Role = Literal["admin", "developer", "service"]
ROLES: tuple[Role, ...] = ("admin", "developer", "service")
PERIODS = {"minute": 60, "hour": 3600, "day": 86400, "month": 30 * 86400}
LIMIT_KEYS = frozenset({"rpm", "tpm", "budget_tokens", "budget_usd", "budget_period"})


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh ``(id, key)``."""
    key_id = secrets.token_hex(6)
    return key_id, f"keel_{key_id}_{secrets.token_urlsafe(32)}"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request."""

    key_id: str
    name: str
    role: Role
    models: tuple[str, ...] | None = None  # glob patterns; None allows every model
    pipelines: tuple[str, ...] | None = None  # glob patterns; None allows every pipeline
    groups: tuple[str, ...] = ()  # access groups (retrieval filters documents by them)
    limits: dict[str, Any] = field(default_factory=dict)

    @property
    def caller(self) -> str:
        return f"key:{self.key_id}:{self.name}"

    def may_call_model(self, model: str) -> bool:
        return self.models is None or any(fnmatch.fnmatchcase(model, p) for p in self.models)

    def may_run_pipeline(self, name: str) -> bool:
        return self.pipelines is None or any(fnmatch.fnmatchcase(name, p) for p in self.pipelines)

    def require_pipeline(self, name: str) -> None:
        if not self.may_run_pipeline(name):
            raise Forbidden(
                f"this API key may not run pipeline {name!r}; its scopes allow "
                f"{list(self.pipelines or ())}",
                code="scope_denied",
                pipeline=name,
            )

    def require_model(self, model: str) -> None:
        if not self.may_call_model(model):
            raise Forbidden(
                f"this API key may not call model {model!r}; its scopes allow "
                f"{list(self.models or ())}",
                code="scope_denied",
                model=model,
            )


def principal_of(key: StoredKey) -> Principal:
    models = key.scopes.get("models")
    pipelines = key.scopes.get("pipelines")
    return Principal(
        key.id,
        key.name,
        key.role,  # type: ignore[arg-type]
        tuple(models) if models is not None else None,
        tuple(pipelines) if pipelines is not None else None,
        tuple(key.groups),
        dict(key.limits),
    )


def check_limits(limits: dict[str, Any]) -> dict[str, Any]:
    """Validated limits: positive numbers, a known period."""
    unknown = set(limits) - LIMIT_KEYS
    if unknown:
        raise InvalidInputError(
            f"unknown limits {sorted(unknown)}; known: {sorted(LIMIT_KEYS)}",
            code="limits_invalid",
        )
    clean = {k: v for k, v in limits.items() if v is not None}
    for name in ("rpm", "tpm", "budget_tokens"):
        value = clean.get(name)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise InvalidInputError(f"{name} must be a positive integer", code="limits_invalid")
    usd = clean.get("budget_usd")
    if usd is not None:
        try:
            if float(usd) <= 0:
                raise ValueError
        except (TypeError, ValueError) as exc:
            raise InvalidInputError("budget_usd must be positive", code="limits_invalid") from exc
        clean["budget_usd"] = str(usd)
    if "budget_tokens" in clean or "budget_usd" in clean:
        clean.setdefault("budget_period", "day")
    if clean.get("budget_period", "day") not in PERIODS:
        raise InvalidInputError(
            f"budget_period must be one of {sorted(PERIODS)}", code="limits_invalid"
        )
    return clean


class KeyService:
    """Creates, lists, revokes and verifies keys; audit entries for every change."""

    def __init__(self, store: Store, settings: AuthSettings) -> None:
        self._store = store
        self._ttl = settings.key_cache_seconds
        admin = settings.admin_key.get_secret_value() if settings.admin_key else ""
        self._admin_hash = hash_key(admin) if admin else None
        self._cache: dict[str, tuple[float, Principal | str]] = {}

    def create(
        self,
        name: str,
        role: str,
        *,
        actor: str,
        models: list[str] | None = None,
        pipelines: list[str] | None = None,
        groups: list[str] | None = None,
        limits: dict[str, Any] | None = None,
    ) -> tuple[StoredKey, str]:
        """Store a new key and return it with its secret (shown once, never stored)."""
        if role not in ROLES:
            raise InvalidInputError(f"role must be one of {list(ROLES)}", code="role_invalid")
        if not name or len(name) > 200:
            raise InvalidInputError("a key needs a name of 1-200 characters", code="name_invalid")
        key_id, secret = new_key()
        scopes = {"models": models, "pipelines": pipelines}
        record = StoredKey(
            key_id,
            name,
            role,
            scopes,
            list(groups or []),
            check_limits(limits or {}),
            created_by=actor,
        )
        stored = self._store.keys.add(record, hash_key(secret))
        self._store.audit.record(actor, "key.create", key_id, {"name": name, "role": role})
        return stored, secret

    def revoke(self, key_id: str, *, actor: str) -> StoredKey:
        stored = self._store.keys.revoke(key_id)
        self._store.audit.record(actor, "key.revoke", key_id, {"name": stored.name})
        self._cache.clear()
        return stored

    def authenticate(self, key: str | None) -> Principal:
        if not key:
            raise Unauthorized(
                "an API key is required: send `Authorization: Bearer <key>` (create one with "
                "`keel keys create`)",
                code="auth_required",
            )
        digest = hash_key(key)
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return Principal("settings", "admin", "admin")
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is None or hit[0] < now:
            stored = self._store.keys.by_hash(digest)
            found: Principal | str = "key_invalid"
            if stored is not None:
                found = principal_of(stored) if stored.revoked_at is None else "key_revoked"
            if len(self._cache) > 10_000:
                self._cache.clear()
            hit = self._cache[digest] = (now + self._ttl, found)
        if isinstance(hit[1], str):
            why = "was revoked" if hit[1] == "key_revoked" else "is not a Keel API key"
            raise Unauthorized(f"this API key {why}; ask an admin for a new one", code=hit[1])
        return hit[1]
