"""``POST /v1/pipelines/{name}/invoke``: run a pipeline version on one input."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from keel.deploy.router import RequestKeys
from keel.deploy.serving import route, run_routed
from keel.pipeline.steps import RunContext
from keel.runtime import Runtime
from keel.server.responses import JSONBytes
from keel.server.routes.reviews import held_response
from keel.server.schemas import ERRORS, InvokeRequest, InvokeResponse

router = APIRouter(tags=["pipelines"])


@router.post(
    "/v1/pipelines/{name}/invoke",
    responses={
        200: {"model": InvokeResponse},
        202: {"description": "Held for human review: poll the review id."},
        **ERRORS,
    },
    summary="Run a pipeline on one input",
)
async def invoke(
    name: str,
    body: InvokeRequest,
    request: Request,
    version: str | None = Query(None, description="Exact version (or a unique prefix)."),
    label: str | None = Query(None, description="A label such as production or staging."),
) -> Response:
    runtime: Runtime = request.app.state.runtime
    principal = request.state.principal
    principal.require_pipeline(name)
    keys = RequestKeys(request.headers, {"input": body.input}, principal.key_id)
    routed = route(runtime, name, version, label, keys)
    correlation = request.state.correlation
    context = RunContext(
        correlation_id=correlation.request_id,
        parent=correlation.parent,
        caller=principal.caller,
        label=label,
        groups=principal.groups,
    )
    result = await run_routed(runtime, routed, body.input, context)
    runtime.sampler.offer(result, body.input)
    await request.app.state.auth.limiter.settle(principal, result.usage, result.cost_usd)
    request.state.metric_labels = {
        "model": result.model,
        "pipeline": name,
        "version": result.version,
    }
    request.app.state.metrics.usage(
        result.usage, result.cost_usd, key=principal.caller, model=result.model, pipeline=name
    )
    if result.review_id:
        return held_response(result.review_id, result.trace_id, result.correlation_id)
    return JSONBytes(result.to_dict())
