"""``keel serve``: the HTTP server on uvicorn."""

from __future__ import annotations

import typer

from keel.cli.context import load_settings, open_store
from keel.cli.keys import bootstrap_admin_key
from keel.cli.output import stdout
from keel.settings import KeelSettings

_USAGE = """\
[bold]Keel is serving on http://{host}:{port}[/bold]  (OpenAPI: http://{host}:{port}/docs)

Every call needs an API key; {key_hint}
Call a pipeline with curl:
  curl -s http://{host}:{port}/v1/pipelines/support-triage/invoke \\
    -H "authorization: Bearer $({key_cmd})" \\
    -H 'content-type: application/json' \\
    -d '{{"input": {{"subject": "Charged twice", "body": "My card was billed two times."}}}}'

or from Python:
  import httpx, os, pathlib
  key = {key_py}
  r = httpx.post("http://{host}:{port}/v1/pipelines/summarize/invoke",
                 headers={{"authorization": f"Bearer {{key}}"}},
                 json={{"input": {{"text": "Keel wraps LLMs in adapters..."}}}})
  print(r.json()["output"], r.json()["trace_id"])

or with the OpenAI SDK:  openai.OpenAI(base_url="http://{host}:{port}/v1", api_key=key)
  .chat.completions.create(model="pipeline/summarize", messages=...)

Then look inside a run:  .venv/bin/keel traces show <trace_id>
"""


def _key_hints(settings: KeelSettings) -> dict[str, str]:
    """Where the examples take their key from: the bootstrap file, or the configured one."""
    with open_store() as store:
        path = bootstrap_admin_key(settings, store)
    if path is None:
        return {
            "key_hint": "the admin key is the one set in KEEL_AUTH__ADMIN_KEY.",
            "key_cmd": "printenv KEEL_AUTH__ADMIN_KEY",
            "key_py": 'os.environ["KEEL_AUTH__ADMIN_KEY"]',
        }
    return {
        "key_hint": f"the admin key is in {path} (created on first start; keep it secret).",
        "key_cmd": f"cat {path}",
        "key_py": f'pathlib.Path("{path}").read_text().strip()',
    }


def serve(
    host: str | None = typer.Option(None, help="Interface; default from settings."),
    port: int | None = typer.Option(None, help="Port; default from settings."),
    show_usage: bool = typer.Option(False, help="Print how to call the server first."),
) -> None:
    """Serve pipelines over HTTP (invoke, traces, health, OpenAPI)."""
    import uvicorn  # deferred: other commands should not pay for the web stack

    from keel.server import create_app
    from keel.server.protocol import CoalescingHttpToolsProtocol

    settings = load_settings()
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    tls = settings.server.tls_certfile is not None
    if show_usage:
        usage = _USAGE.format(host=host, port=port, **_key_hints(settings))
        stdout().print(usage.replace("http://", "https://") if tls else usage)
    uvicorn.run(
        create_app(settings, tune_collector=True),
        host=host,
        port=port,
        log_level=settings.log_level,
        http=CoalescingHttpToolsProtocol,
        access_log=settings.server.access_log,
        ssl_certfile=str(settings.server.tls_certfile) if tls else None,
        ssl_keyfile=str(settings.server.tls_keyfile) if tls else None,
    )
