"""``keel serve``: the HTTP server on uvicorn."""

from __future__ import annotations

import typer

from keel.cli.context import load_settings
from keel.cli.output import stdout

_USAGE = """\
[bold]Keel is serving on http://{host}:{port}[/bold]  (OpenAPI: http://{host}:{port}/docs)

Call a pipeline with curl:
  curl -s http://{host}:{port}/v1/pipelines/support-triage/invoke \\
    -H 'content-type: application/json' \\
    -d '{{"input": {{"subject": "Charged twice", "body": "My card was billed two times."}}}}'

or from Python:
  import httpx
  r = httpx.post("http://{host}:{port}/v1/pipelines/summarize/invoke",
                 json={{"input": {{"text": "Keel wraps LLMs in adapters..."}}}})
  print(r.json()["output"], r.json()["trace_id"])

Then look inside a run:  .venv/bin/keel traces show <trace_id>
"""


def serve(
    host: str | None = typer.Option(None, help="Interface; default from settings."),
    port: int | None = typer.Option(None, help="Port; default from settings."),
    show_usage: bool = typer.Option(False, help="Print how to call the server first."),
) -> None:
    """Serve pipelines over HTTP (invoke, traces, health, OpenAPI)."""
    import uvicorn  # deferred: other commands should not pay for the web stack

    from keel.server import create_app

    settings = load_settings()
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    if show_usage:
        stdout().print(_USAGE.format(host=host, port=port))
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level,
        access_log=settings.server.access_log,
    )
