"""Pipelines behind the chat API: ``model: "pipeline/NAME[@LABEL|@VERSION]"``.

How a chat request maps to a pipeline run:

* **input**: the request's top-level ``input`` field when present (any JSON, sent with
  the SDK's ``extra_body={"input": ...}``); otherwise the content of the last user
  message, parsed as JSON when it is a JSON object or array, else used as plain text.
* **parameters**: the pipeline version fixes its model, prompt and sampling parameters;
  the request's own sampling fields are ignored.
* **answer**: one choice whose content is the pipeline's output (text as is, anything
  else as JSON text), usage and cost of the run, and a ``keel`` object with the trace id,
  version, the model that served and the decision (label pipelines).
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

import orjson

from keel.core.errors import HeldForReview
from keel.core.messages import ChatResponse
from keel.deploy.serving import run_routed
from keel.gateway import wire
from keel.gateway.errors import BadRequest
from keel.pipeline.steps import RunContext

if TYPE_CHECKING:
    from keel.deploy.router import Routed
    from keel.gateway.service import Answer, CallContext
    from keel.gateway.targets import Target
    from keel.runtime import Runtime


def pipeline_input(call: wire.ChatCall) -> Any:
    if "input" in call.extra:
        return call.extra["input"]
    for message in reversed(call.messages):
        if message.role == "user":
            text = message.content.strip()
            if text[:1] in ("{", "["):
                try:
                    return orjson.loads(text)
                except orjson.JSONDecodeError:
                    return message.content
            return message.content
    raise BadRequest(
        "a pipeline call needs its input: a user message, or an `input` field in the body",
        code="pipeline_input_missing",
    )


def output_text(output: Any) -> str:
    return output if isinstance(output, str) else orjson.dumps(output).decode()


async def pipeline_chat(
    runtime: Runtime,
    target: Target,
    routed: Routed,
    call: wire.ChatCall,
    ctx: CallContext,
) -> Answer:
    from keel.gateway.service import Answer

    ref = target.pipeline
    assert ref is not None
    context = RunContext(
        correlation_id=ctx.request_id,
        parent=ctx.parent,
        caller=ctx.caller,
        label=ref.label,
        groups=ctx.groups,
        # A streamed request a deployment routed reads its model as a stream, so each arm's
        # time to first token is recorded and judged.
        stream=call.stream and routed.deployment is not None,
    )
    data = pipeline_input(call)
    result = await run_routed(runtime, routed, data, context)
    runtime.sampler.offer(result, data)
    if result.review_id:  # the answer is held: never return it before a reviewer decides
        raise HeldForReview(
            f"the answer is held for human review; poll /v1/reviews/{result.review_id}",
            review_id=result.review_id,
            poll=f"/v1/reviews/{result.review_id}",
            trace_id=result.trace_id,
        )
    response = ChatResponse(output_text(result.output), "stop", result.usage)
    body = wire.completion_json(
        response, target.name, "chatcmpl-" + secrets.token_hex(12), int(time.time())
    )
    body["keel"] = {
        "trace_id": result.trace_id,
        "pipeline": result.pipeline,
        "version": result.version,
        "model": result.model,
        "decision": result.decision.to_dict() if result.decision else None,
        "cost_usd": str(result.cost_usd),
    }
    return Answer(body, result.model, result.usage, result.cost_usd, result.trace_id)
