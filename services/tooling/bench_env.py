"""An isolated local stack for the benchmarks and the load harness: a broker of its own
(wiped first: a fresh topic set every run) and services on loopback ports of their own, so
that a run never touches a developer's stack, the demo's or another engineer's test run."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tooling import stack


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def broker_env(default_port: int, data: Path) -> dict[str, str]:
    """The bench's own broker: KAFKA_PORT / OVERGANG_KAFKA_DATA if set, else these."""
    port = os.environ.get("KAFKA_PORT") or str(default_port)
    return {
        "KAFKA_PORT": port,
        "OVERGANG_KAFKA_DATA": os.environ.get("OVERGANG_KAFKA_DATA") or str(data),
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
    }


@contextmanager
def own_broker(env: dict[str, str]) -> Iterator[str]:
    """A freshly wiped local broker for the duration; yields its bootstrap address."""
    os.environ.update(env)
    subprocess.run([str(stack.KAFKA_SH), "clean"], check=True, stdout=subprocess.DEVNULL)
    bootstrap = stack.start_kafka()
    try:
        yield bootstrap
    finally:
        stack.stop_kafka()


def service_env(bootstrap: str, data_dir: Path, clock_date: str) -> dict[str, str]:
    """Loopback addresses of its own for every listener a service may open."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "OVERGANG_DATA_DIR": str(data_dir),
        "OVERGANG_CLOCK_DATE": clock_date,
        "OVERGANG_AUTH_TOKENS": "",
        "OVERGANG_APP_ID_SUFFIX": f"-bench-{uuid.uuid4().hex[:8]}",
        "PATHWAY_GRPC_ADDR": f"127.0.0.1:{free_port()}",
        "DISCHARGE_GRPC_ADDR": f"127.0.0.1:{free_port()}",
        "COORDINATION_GRPC_ADDR": f"127.0.0.1:{free_port()}",
        "PATHWAY_METRICS_ADDR": f"127.0.0.1:{free_port()}",
        "DISCHARGE_METRICS_ADDR": f"127.0.0.1:{free_port()}",
        "COORDINATION_METRICS_ADDR": f"127.0.0.1:{free_port()}",
    }


def machine() -> str:
    """CPU model, cores, memory and the load average now (a shared machine's figures
    move with it: read every ratio with it)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if "model name" in ln), "?"
    )
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    total_kb = next(
        (int(ln.split()[1]) for ln in meminfo.splitlines() if ln.startswith("MemTotal")), 0
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"machine: {model}, {os.cpu_count()} cores, {total_kb / 2**20:.0f} GiB, load {load}"
