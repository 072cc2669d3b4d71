"""``/api/keys``: create (the key is shown once), list and revoke API keys. Admin only."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from keel.gateway.keys import Principal
from keel.gateway.setup import Auth
from keel.server.responses import JSONBytes
from keel.server.schemas import ERRORS

router = APIRouter(tags=["keys"])


class KeyLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rpm: int | None = Field(None, ge=1, description="Requests per minute.")
    tpm: int | None = Field(None, ge=1, description="Tokens (in + out) per minute.")
    budget_tokens: int | None = Field(None, ge=1, description="Tokens per budget period.")
    budget_usd: str | None = Field(None, description="US dollars per budget period.")
    budget_period: str | None = Field(None, description="minute, hour, day (default) or month.")


class CreateKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: str = Field("service", description="admin, developer or service.")
    models: list[str] | None = Field(None, description="Model name patterns; null allows all.")
    pipelines: list[str] | None = Field(None, description="Pipeline patterns; null allows all.")
    groups: list[str] = Field(default_factory=list, description="Access groups (retrieval ACL).")
    limits: KeyLimits = Field(default_factory=KeyLimits)


@router.post("/api/keys", status_code=201, summary="Create a key (shown once)", responses=ERRORS)
def create_key(body: CreateKey, request: Request) -> Response:
    auth: Auth = request.app.state.auth
    principal: Principal = request.state.principal
    stored, secret = auth.keys.create(
        body.name,
        body.role,
        actor=principal.caller,
        models=body.models,
        pipelines=body.pipelines,
        groups=body.groups,
        limits=body.limits.model_dump(exclude_none=True),
    )
    return JSONBytes({**stored.to_dict(), "key": secret}, status_code=201)


@router.get("/api/keys", summary="Active keys (secrets are never shown)", responses=ERRORS)
def list_keys(request: Request, include_revoked: bool = False) -> Response:
    runtime = request.app.state.runtime
    keys = runtime.store.keys.list(include_revoked=include_revoked)
    return JSONBytes({"keys": [key.to_dict() for key in keys]})


@router.delete("/api/keys/{key_id}", summary="Revoke a key", responses=ERRORS)
def revoke_key(key_id: str, request: Request) -> Response:
    auth: Auth = request.app.state.auth
    principal: Principal = request.state.principal
    return JSONBytes(auth.keys.revoke(key_id, actor=principal.caller).to_dict())


@router.get("/api/audit", summary="Recent admin actions, newest first", responses=ERRORS)
def audit(request: Request, limit: int = 100) -> Response:
    entries = request.app.state.runtime.store.audit.list(limit)
    return JSONBytes(
        {
            "entries": [
                {
                    "id": e.id,
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "target": e.target,
                    "details": e.details,
                }
                for e in entries
            ]
        }
    )
