"""The /metrics port: a real HTTP scrape of a server started on port 0, each process's
own registry, the settings that place or disable it, and a port already taken."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from overgang.config import Settings
from overgang.metrics import Metrics
from overgang.metrics_watch import ServiceMetrics, parse_address, serve_metrics


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """{sample name: {sorted labels: value}} of one real HTTP GET /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def test_a_scrape_over_http_sees_what_the_service_counted() -> None:
    metrics = ServiceMetrics("pathway", Metrics())
    server = metrics.serve("127.0.0.1:0")
    assert server is not None and server.port > 0
    try:
        metrics.metrics.record_in("pathway", "overgang.hospital-events.v1")
        metrics.metrics.record_processed("pathway", "overgang.hospital-events.v1")
        metrics.watch_pathways(lambda: {"DISCHARGE_READY": 3, "ADMITTED": 1})
        samples = scrape(server.port)
    finally:
        metrics.close()
    topic = (("service", "pathway"), ("topic", "overgang.hospital-events.v1"))
    assert samples["overgang_records_in_total"][topic] == 1
    assert samples["overgang_records_processed_total"][topic] == 1
    dead = samples["overgang_records_dead_lettered_total"]
    assert dead[(("reason_class", "decode"), *topic)] == 0  # every class from 0
    pathways = samples["overgang_pathways"]
    assert pathways[(("service", "pathway"), ("stage", "DISCHARGE_READY"))] == 3
    assert "process_resident_memory_bytes" in samples  # the process collector
    assert not any(name.endswith("_created") for name in samples)


def test_each_registry_is_its_own() -> None:
    one, two = ServiceMetrics("pathway", Metrics()), ServiceMetrics("discharge", Metrics())
    first, second = one.serve("127.0.0.1:0"), two.serve("127.0.0.1:0")
    assert first is not None and second is not None
    try:
        one.metrics.record_in("pathway", "overgang.hospital-events.v1")
        assert "overgang_records_in_total" in scrape(first.port)
        assert "overgang_records_in_total" not in scrape(second.port)
    finally:
        one.close()
        two.close()


def test_close_stops_the_server() -> None:
    metrics = ServiceMetrics("pathway", Metrics())
    server = metrics.serve("127.0.0.1:0")
    assert server is not None
    metrics.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=2)


@pytest.mark.parametrize("address", ["", "off", "OFF", "  off "])
def test_empty_or_off_serves_nothing(address: str) -> None:
    assert serve_metrics(address, Metrics()) is None


def test_a_port_already_taken_is_logged_and_the_service_goes_on() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve_metrics(f"127.0.0.1:{port}", Metrics()) is None


@pytest.mark.parametrize("address", ["9461", ":9461", "127.0.0.1:", "host:port", "h:70000"])
def test_a_malformed_address_is_a_configuration_error(address: str) -> None:
    with pytest.raises(ValueError, match="metrics address"):
        serve_metrics(address, Metrics())


def test_addresses_parse() -> None:
    assert parse_address("127.0.0.1:9461") == ("127.0.0.1", 9461)
    assert parse_address("[::1]:9462") == ("::1", 9462)
    assert parse_address("0.0.0.0:9463") == ("0.0.0.0", 9463)


def test_settings_default_ports_and_disabling(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PATHWAY", "COORDINATION", "DISCHARGE"):
        monkeypatch.delenv(f"{name}_METRICS_ADDR", raising=False)
    defaults = Settings()
    assert (defaults.pathway_metrics, defaults.coordination_metrics) == (
        "127.0.0.1:9461",
        "127.0.0.1:9462",
    )
    assert defaults.discharge_metrics == "127.0.0.1:9463"
    monkeypatch.setenv("PATHWAY_METRICS_ADDR", "")
    monkeypatch.setenv("COORDINATION_METRICS_ADDR", "off")
    monkeypatch.setenv("DISCHARGE_METRICS_ADDR", " 0.0.0.0:9999 ")
    changed = Settings()
    assert serve_metrics(changed.pathway_metrics, Metrics()) is None
    assert serve_metrics(changed.coordination_metrics, Metrics()) is None
    assert changed.discharge_metrics == "0.0.0.0:9999"
