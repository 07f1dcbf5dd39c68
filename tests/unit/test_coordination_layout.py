"""The coordination service's skeleton keeps time out of its core: the domain and the
stream worker never read the real time, they get it from the injected clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[2] / "services" / "coordination"
CLOCK_FREE = [SERVICE / "worker.py", *sorted((SERVICE / "domain").glob("*.py"))]
REAL_TIME = {"now", "utcnow", "today", "monotonic", "perf_counter", "time_ns"}


def _real_time_reads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in REAL_TIME:
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
        elif isinstance(node, ast.Import) and any(a.name == "time" for a in node.names):
            found.append(f"{path.name}:{node.lineno} import time")
        elif isinstance(node, ast.ImportFrom) and node.module in {"time", "datetime"}:
            found.extend(
                f"{path.name}:{node.lineno} from {node.module} import {a.name}"
                for a in node.names
                if a.name in REAL_TIME
            )
    return found


@pytest.mark.parametrize("module", CLOCK_FREE, ids=lambda p: p.relative_to(SERVICE).as_posix())
def test_the_core_never_reads_the_real_time(module: Path) -> None:
    assert _real_time_reads(module) == []
