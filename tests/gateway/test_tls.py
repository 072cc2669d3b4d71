"""`keel serve` speaks HTTPS when a certificate and key are configured."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from keel.settings import ServerSettings

from ..serving import free_port, start

pytestmark = pytest.mark.integration


def test_a_half_configured_tls_pair_is_refused() -> None:
    with pytest.raises(ValueError, match="tls_certfile and tls_keyfile"):
        ServerSettings(tls_certfile=Path("cert.pem"))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_serves_https_with_a_configured_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    trust = ssl.create_default_context(cafile=str(cert))
    port = free_port()
    env = {
        **os.environ,
        "KEEL_HOME": str(tmp_path / "home"),
        "KEEL_AUTH__ADMIN_KEY": "tls-admin-key-0123456789",
        "KEEL_SERVER__TLS_CERTFILE": str(cert),
        "KEEL_SERVER__TLS_KEYFILE": str(key),
        "KEEL_PROVIDERS__DEFAULT_MODEL": "testing:echo",
    }
    proc = start(env, port)
    try:
        url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(url + "/healthz", verify=trust, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the TLS server did not start"
                time.sleep(0.1)
        assert response.status_code == 200
        chat = httpx.post(
            url + "/v1/chat/completions",
            verify=trust,
            headers={"authorization": "Bearer tls-admin-key-0123456789"},
            json={"model": "testing:echo", "messages": [{"role": "user", "content": "tls"}]},
        )
        assert chat.json()["choices"][0]["message"]["content"] == "tls"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)  # plain HTTP is not served
    finally:
        proc.terminate()
        proc.wait(20)
