"""Summarise a heap probe directory written by ``heap_probe.py`` (``run.py --probe DIR``).

    python bench/gateway/heap_report.py DIR [--top 15]

Prints RSS, anonymous and file-backed memory and the traced heap at each probe, the object
types whose live count changed most between the first and last probe, and the tracemalloc
sites (grouped by traceback) that grew most between consecutive snapshots.
"""

from __future__ import annotations

import argparse
import json
import tracemalloc
from pathlib import Path
from typing import Any


def memory_table(records: list[dict[str, Any]]) -> None:
    print("probe   RSS MB  anon MB  file MB  traced MB  sqlite MB  db files")
    for rec in records:
        rss, anon, file = (int(rec[k] or 0) / 1024 for k in ("rss_kb", "anon_kb", "file_kb"))
        traced = rec.get("traced_kb")
        peak = rec.get("traced_peak_kb")
        shown = f"{traced / 1024:9.1f}" if traced is not None else "        -"
        shown += f" (peak {peak / 1024:.1f})" if peak is not None else ""
        sqlite = (rec.get("sqlite") or {}).get("used", 0) / 2**20
        trimmed = rec.get("trimmed_rss_kb")
        after_trim = f"  trimmed {trimmed / 1024:.1f}" if trimmed is not None else ""
        columns = f"{rss:8.1f} {anon:8.1f} {file:8.1f} {shown} {sqlite:10.1f}"
        pymalloc = rec.get("pymalloc") or {}
        used, held = (
            pymalloc.get(k, 0) / 2**20 for k in ("bytes in allocated blocks", "bytes in arenas")
        )
        arenas = f"  pymalloc used {used:.1f} of {held:.1f} MB" if held else ""
        print(f"{rec['n']:>5} {columns}  {rec.get('db_files')}{after_trim}{arenas}")


def object_growth(records: list[dict[str, Any]], top: int) -> None:
    first, last = records[0]["objects"], records[-1]["objects"]
    changes = {name: last.get(name, 0) - first.get(name, 0) for name in set(first) | set(last)}
    print(f"\nlive objects by type, probe 1 → {records[-1]['n']} (largest changes)")
    for name, change in sorted(changes.items(), key=lambda kv: -abs(kv[1]))[:top]:
        print(f"  {change:+9d}  {name} ({last.get(name, 0)})")


def site_growth(directory: Path, top: int) -> None:
    paths = sorted(directory.glob("snapshot-*.pickle"), key=lambda p: int(p.stem.split("-")[1]))
    snapshots = [tracemalloc.Snapshot.load(str(p)) for p in paths]
    keep = tracemalloc.Filter(False, tracemalloc.__file__)
    for i in range(1, len(paths)):
        name_a, name_b = paths[i - 1], paths[i]
        before, after = (snapshots[j].filter_traces([keep]) for j in (i - 1, i))
        diff = after.compare_to(before, "traceback")
        total = sum(stat.size_diff for stat in diff)
        print(f"\n{name_a.stem} → {name_b.stem}: traced {total / 1024:+.0f} KiB; top growers")
        for stat in sorted(diff, key=lambda s: -s.size_diff)[:top]:
            if stat.size_diff <= 0:
                break
            frames = " < ".join(
                f"{Path(f.filename).name}:{f.lineno}" for f in list(stat.traceback)[:4]
            )
            print(f"  {stat.size_diff / 1024:+8.0f} KiB {stat.count_diff:+7d} blocks  {frames}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    lines = (args.directory / "probe.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    memory_table(records)
    object_growth(records, args.top)
    site_growth(args.directory, args.top)


if __name__ == "__main__":
    main()
