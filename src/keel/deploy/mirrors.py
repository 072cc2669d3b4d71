"""Which shadow mirror a runtime uses: a worker process (``deploy.shadow_isolation =
"process"``, the default) or turns on the server's event loop (``"loop"``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from keel.deploy.foreground import Foreground
from keel.deploy.shadow import ShadowMirror
from keel.deploy.shadow_process import ProcessMirror

if TYPE_CHECKING:
    from keel.runtime import Runtime
    from keel.settings import KeelSettings

Mirror = ShadowMirror | ProcessMirror


def build_mirror(runtime: Runtime, factory: Callable[[], Runtime] | None = None) -> Mirror:
    """The mirror ``deploy.shadow_isolation`` asks for. A worker process builds its runtime
    with ``factory`` (picklable), by default ``Runtime(settings)``: give one when this
    runtime was assembled in code (models added by hand) rather than from settings alone."""
    deploy = runtime.settings.deploy
    if deploy.shadow_isolation == "process":
        return ProcessMirror(
            factory or functools.partial(runtime_from_settings, runtime.settings),
            queue_size=deploy.shadow_queue_size,
            workers=deploy.shadow_workers,
            nice=deploy.shadow_nice,
            sched_idle=deploy.shadow_sched_idle,
            shutdown_s=deploy.shadow_shutdown_seconds,
        )
    foreground = Foreground(
        quiet_s=deploy.shadow_quiet_ms / 1000,
        poll_s=deploy.shadow_recheck_ms / 1000,
        max_wait_s=deploy.shadow_max_wait_ms / 1000,
    )
    return loop_mirror(runtime, foreground, deploy.shadow_queue_size, deploy.shadow_workers)


def loop_mirror(
    runtime: Runtime, foreground: Foreground, queue_size: int, workers: int
) -> ShadowMirror:
    """A mirror running the candidate with ``runtime`` on the current event loop."""
    return ShadowMirror(
        runtime.runner,
        runtime.catalog,
        runtime.store,
        queue_size=queue_size,
        workers=workers,
        evaluators=runtime.evaluator,
        foreground=foreground,
    )


def runtime_from_settings(settings: KeelSettings) -> Runtime:
    """The shadow worker's runtime: the server's settings, built anew in the worker."""
    from keel.runtime import Runtime  # deferred: the runtime imports this module

    return Runtime(settings)
