"""Opening a store that is already at the head does not load Alembic; a store behind it
(or new) is still migrated by Alembic."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from keel.store import Store
from keel.store.migrate import head_revision, shipped_heads


def test_shipped_heads_read_without_alembic_match_alembics_head() -> None:
    assert shipped_heads() == {head_revision()}


def test_heads_follow_branches_and_merges(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (tmp_path / "b.py").write_text('revision: str = "b"\ndown_revision: str | None = "a"\n')
    (tmp_path / "c.py").write_text('revision = "c"\ndown_revision = "a"\n')
    assert shipped_heads(tmp_path) == {"b", "c"}
    (tmp_path / "m.py").write_text('revision = "m"\ndown_revision = ("b", "c")\n')
    assert shipped_heads(tmp_path) == {"m"}


def test_a_store_at_head_opens_without_importing_alembic(fresh_url: str) -> None:
    Store.open(fresh_url).close()  # migrated by Alembic
    probe = (
        "import sys\n"
        "from keel.store import Store\n"
        f"store = Store.open({fresh_url!r})\n"
        "store.pipelines.put_version('triage', 'a' * 64, {'name': 'triage'})\n"
        "store.close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_store_behind_head_is_still_migrated(fresh_url: str) -> None:
    store = Store.open(fresh_url, migrate=False)
    try:
        assert store.revision() is None
        store.upgrade()
        assert store.revision() == head_revision()
        store.upgrade()  # at head: the fast path, nothing changes
        assert store.revision() == head_revision()
    finally:
        store.close()
