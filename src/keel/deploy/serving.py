"""The request path of a deployed pipeline: route, run, and mirror to the shadow after."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from keel.core.errors import KeelError
from keel.deploy.router import RequestKeys, Routed
from keel.deploy.shadow import MirrorJob
from keel.pipeline.steps import RunContext

if TYPE_CHECKING:
    from keel.pipeline.runner import RunResult
    from keel.runtime import Runtime


async def run_routed(runtime: Runtime, routed: Routed, data: Any, context: RunContext) -> RunResult:
    """Run the routed version; a mirrored request is queued for the shadow afterwards, so
    the candidate never delays (or changes) the answer returned here."""
    if routed.attributes:
        context = dataclasses.replace(context, attributes=routed.attributes)
    try:
        result = await runtime.runner.run(routed.compiled, data, context)
    except KeelError as exc:
        _mirror(runtime, routed, data, context, None, exc.code)
        raise
    _mirror(runtime, routed, data, context, result, None)
    return result


def route(
    runtime: Runtime,
    name: str,
    version: str | None,
    label: str | None,
    keys: RequestKeys,
) -> Routed:
    """A pinned version or label bypasses the deployment; otherwise the router decides."""
    if version or label:
        return Routed(runtime.catalog.resolve(name, version=version, label=label), {})
    return runtime.router.route(name, keys)


def _mirror(
    runtime: Runtime,
    routed: Routed,
    data: Any,
    context: RunContext,
    result: RunResult | None,
    error: str | None,
) -> None:
    if routed.mirror_pair is None or routed.deployment is None:
        return
    for candidate in routed.deployment.live:  # each candidate answers in its own pair row
        runtime.shadow.submit(
            MirrorJob(
                routed.deployment,
                routed.mirror_pair,
                data,
                result,
                error,
                caller=context.caller,
                groups=context.groups,
                stream=context.stream,
                candidate=candidate,
            )
        )
