"""Suite-wide guards and fixtures.

No test may reach a paid model API: remote model calls are switched off for every settings
object the suite builds, and the HTTP providers refuse non-loopback hosts before connecting.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

os.environ["KEEL_PROVIDERS__ALLOW_REMOTE"] = "false"
os.environ.pop("KEEL_DATABASE_URL", None)
os.environ.pop("KEEL_CONFIG", None)

# Property tests: no per-example deadline (a busy two-core machine makes timing noise, not
# bugs); in CI the examples are derived from each test's name, so a run is reproducible.
hypothesis_settings.register_profile("keel", deadline=None)
hypothesis_settings.register_profile("keel-ci", deadline=None, derandomize=True)
hypothesis_settings.load_profile("keel-ci" if os.environ.get("CI") else "keel")

EXAMPLES = Path(__file__).resolve().parent.parent / "src" / "keel" / "examples"


@pytest.fixture
def keel_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated project directory: settings, store and keel.toml all live here."""
    home = tmp_path / "home"
    monkeypatch.setenv("KEEL_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def loopback_host() -> str:
    """A host name other than ``localhost`` that resolves only to loopback addresses here."""
    for name in (socket.gethostname(), "vm", "runsc", "ip6-localhost"):
        try:
            infos = socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)
        except OSError:
            continue
        if infos and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos):
            return name
    pytest.skip("no host name other than localhost resolves to loopback on this machine")
