"""The Grafana dashboard and the Prometheus scrape config in infra/ use exactly the names
the kernel registers: every `overgang_*` name in their PromQL is exported (a histogram
as `_bucket`, `_sum` or `_count`, a counter with `_total`), every registered family is on
the dashboard, and the scrape targets are the services' default metrics ports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from overgang.config import Settings
from overgang.metrics import Metrics

INFRA = Path(__file__).resolve().parents[2] / "infra"
DASHBOARD = INFRA / "grafana" / "overgang-dashboard.json"
SCRAPE_CONFIG = INFRA / "prometheus" / "prometheus.yml"
NAME = re.compile(r"\bovergang_[a-z_]+")
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}


def registered() -> dict[str, set[str]]:
    """{family: the names it is exported and queried as} of every overgang_* family."""
    families: dict[str, set[str]] = {}
    for family in Metrics().registry.collect():
        if family.name.startswith("overgang_"):
            families[family.name] = {family.name + s for s in SUFFIXES[family.type]}
    return families


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        target["expr"]
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


def scrape_config_text() -> str:
    """The scrape config without its comments (which may name anything)."""
    return "\n".join(line.split("#", 1)[0] for line in SCRAPE_CONFIG.read_text().splitlines())


def test_the_kernel_registers_the_documented_families() -> None:
    assert set(registered()) == {
        "overgang_records_in",
        "overgang_records_processed",
        "overgang_records_dead_lettered",
        "overgang_consumer_lag_records",
        "overgang_outbox_backlog_rows",
        "overgang_pathways",
        "overgang_running_clocks",
        "overgang_disputes",
        "overgang_tasks_open",
        "overgang_tasks_overdue",
        "overgang_tasks_escalated",
        "overgang_liable_days",
        "overgang_liable_nok",
        "overgang_rate_pending_days",
        "overgang_reversed_liable_days",
        "overgang_reversed_liable_nok",
        "overgang_reversed_rate_pending_days",
        "overgang_grpc_requests",
        "overgang_grpc_request_duration_seconds",
        "overgang_notice_to_answer_seconds",
    }


@pytest.mark.parametrize("source", ["dashboard", "scrape config"])
def test_every_name_in_the_expressions_is_registered(source: str) -> None:
    texts = dashboard_expressions() if source == "dashboard" else [scrape_config_text()]
    used = {name for text in texts for name in NAME.findall(text)}
    exported = set().union(*registered().values())
    assert used - exported == set()
    if source == "dashboard":
        assert used


def test_every_registered_family_is_on_the_dashboard() -> None:
    used = {name for text in dashboard_expressions() for name in NAME.findall(text)}
    missing = [family for family, names in registered().items() if not names & used]
    assert missing == []


def test_the_dashboard_is_one_grafana_dashboard_on_a_chosen_prometheus() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = list(_panels(dashboard["panels"]))
    assert len({p["id"] for p in panels}) == len(panels)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
    titles = " ".join(p["title"].lower() for p in panels)
    for subject in ("stage", "running clocks", "nok", "rate-pending", "overdue", "dead letters"):
        assert subject in titles
    for subject in ("consumer lag", "outbox backlog", "grpc requests", "p99"):
        assert subject in titles


def test_the_scrape_targets_are_the_default_metrics_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    for service in ("PATHWAY", "COORDINATION", "DISCHARGE"):
        monkeypatch.delenv(f"{service}_METRICS_ADDR", raising=False)
    settings = Settings()
    defaults = {settings.pathway_metrics, settings.coordination_metrics, settings.discharge_metrics}
    targets = set(re.findall(r'"([\w.\-]+:\d+)"', scrape_config_text()))
    assert targets == defaults
    jobs = re.findall(r"job_name:\s*(\S+)", scrape_config_text())
    assert jobs == ["overgang-pathway", "overgang-coordination", "overgang-discharge"]
