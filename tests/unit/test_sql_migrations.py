"""Replicas that start together share one database: migrations run one at a time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from coordination.runtime import MIGRATIONS
from overgang.sql.engine import make_engine
from overgang.sql.migrations import migrate


def test_two_replicas_migrating_one_new_database_at_once_both_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'coordination.db'}"
    engines = [make_engine(url) for _ in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda engine: migrate(engine, MIGRATIONS), engines))
    assert results == [None] * 4
