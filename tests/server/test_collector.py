"""The server process freezes its start-up objects and collects young objects less often."""

from __future__ import annotations

import gc

from keel.server.collector import YOUNG_THRESHOLD, tune_for_serving


def test_start_up_objects_leave_the_collectors_reach() -> None:
    threshold = gc.get_threshold()
    kept: list[object] = [object()]  # a list is always tracked by the collector
    try:
        tune_for_serving()
        assert gc.get_freeze_count() > 1000
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *threshold[1:])
        assert not any(obj is kept for obj in gc.get_objects())  # frozen: never scanned
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
    assert any(obj is kept for obj in gc.get_objects())
