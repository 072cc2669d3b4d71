"""Size budget: modules at most 600 lines, functions at most 60, unless allowlisted with a reason.

Run by `make lint`. The allowlist lives in tools/size_allowlist.toml:

    [[allow]]
    path = "src/keel/some/module.py"      # a whole module over budget, or
    function = "name"                      # one function in it
    reason = "why splitting it would make it worse"
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

MODULE_LIMIT = 600
FUNCTION_LIMIT = 60
ROOT = Path(__file__).resolve().parent.parent
ALLOWLIST = ROOT / "tools" / "size_allowlist.toml"


def load_allowlist() -> set[tuple[str, str | None]]:
    if not ALLOWLIST.exists():
        return set()
    entries = tomllib.loads(ALLOWLIST.read_text()).get("allow", [])
    allowed = set()
    for entry in entries:
        if not str(entry.get("reason", "")).strip():
            sys.exit(f"{ALLOWLIST}: entry for {entry.get('path')} has no reason")
        allowed.add((entry["path"], entry.get("function")))
    return allowed


def violations(paths: list[Path]) -> list[str]:
    allowed = load_allowlist()
    found = []
    for path in paths:
        rel = path.relative_to(ROOT).as_posix()
        source = path.read_text(encoding="utf-8")
        lines = source.count("\n") + 1
        if lines > MODULE_LIMIT and (rel, None) not in allowed:
            found.append(f"{rel}: {lines} lines (limit {MODULE_LIMIT})")
        for node in ast.walk(ast.parse(source, filename=rel)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > FUNCTION_LIMIT and (rel, node.name) not in allowed:
                    found.append(
                        f"{rel}:{node.lineno} {node.name}(): {length} lines "
                        f"(limit {FUNCTION_LIMIT})"
                    )
    return found


def main() -> int:
    paths = sorted((ROOT / "src").rglob("*.py"))
    problems = violations(paths)
    for problem in problems:
        print(problem)
    print(f"size budget: {len(paths)} modules checked, {len(problems)} over budget")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
