"""`overgang up` / `overgang down`: local Kafka plus the three services as background
processes, with pid files and logs under the data directory."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from overgang.config import Settings
from tooling.launcher import ServiceFailed, ServiceProcess, grpc_serving

# The local stack is a developer tool of a checkout: its broker script lives in infra/.
CHECKOUT = Path(__file__).resolve().parents[2]
KAFKA_SH = CHECKOUT / "infra" / "kafka" / "kafka.sh"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    address: str


def services(settings: Settings) -> list[ServiceSpec]:
    # Pathway first: it owns the intake; discharge last (its recovery is the slowest).
    return [
        ServiceSpec("pathway", "pathway", settings.pathway_grpc),
        ServiceSpec("coordination", "coordination", settings.coordination_grpc),
        ServiceSpec("discharge", "discharge", settings.discharge_grpc),
    ]


def run_dir(settings: Settings) -> Path:
    return settings.data_dir / "run"


def log_dir(settings: Settings) -> Path:
    return settings.data_dir / "logs"


def start_kafka() -> str:
    """Start the local broker (idempotent) and return its bootstrap address."""
    subprocess.run([str(KAFKA_SH), "start"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([str(KAFKA_SH), "wait"], check=True)
    out = subprocess.run([str(KAFKA_SH), "bootstrap"], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def stop_kafka() -> None:
    subprocess.run([str(KAFKA_SH), "stop"], check=False)


def _pid_alive(pid: int) -> bool:
    # A child of this process (the demo starts and stops its own) stays a zombie, and
    # answers signal 0, until it is reaped.
    try:
        reaped, _status = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def up(settings: Settings, env: dict[str, str], timeout: float = 180.0) -> list[str]:
    """Start every service not already serving; returns lines to print."""
    lines = []
    run_dir(settings).mkdir(parents=True, exist_ok=True)
    started: list[tuple[ServiceSpec, ServiceProcess]] = []
    for spec in services(settings):
        if grpc_serving(spec.address):
            lines.append(f"{spec.name:<13} already serving on {spec.address}")
            continue
        process = ServiceProcess(
            spec.module, spec.address, log_dir(settings) / f"{spec.name}.log", env=env
        ).start()
        (run_dir(settings) / f"{spec.name}.pid").write_text(str(process.pid))
        started.append((spec, process))
    for spec, process in started:
        try:
            process.wait_serving(timeout)
        except ServiceFailed:
            down(settings, keep_kafka=True)
            raise
        lines.append(
            f"{spec.name:<13} serving on {spec.address} (pid {process.pid}, log {process.log_path})"
        )
    return lines


def down(settings: Settings, keep_kafka: bool = False, timeout: float = 30.0) -> list[str]:
    lines = []
    for spec in reversed(services(settings)):
        pid_file = run_dir(settings) / f"{spec.name}.pid"
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text().strip() or 0)
        if pid and _pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
                lines.append(f"{spec.name:<13} killed after {timeout:.0f} s (pid {pid})")
            else:
                lines.append(f"{spec.name:<13} stopped (pid {pid})")
        pid_file.unlink(missing_ok=True)
    if not keep_kafka:
        stop_kafka()
        lines.append("kafka         stopped")
    return lines


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def own_stack_env(bootstrap: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a throwaway stack on `bootstrap`: free loopback ports, its own
    data directory and Faust app ids (so it shares the broker, not the state)."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "OVERGANG_DATA_DIR": str(data_dir),
        "OVERGANG_APP_ID_SUFFIX": f"-own-{uuid.uuid4().hex[:8]}",
        "OVERGANG_AUTH_TOKENS": "",
        "PATHWAY_GRPC_ADDR": f"127.0.0.1:{_free_port()}",
        "COORDINATION_GRPC_ADDR": f"127.0.0.1:{_free_port()}",
        "DISCHARGE_GRPC_ADDR": f"127.0.0.1:{_free_port()}",
        **extra,
    }


@contextlib.contextmanager
def running(env: dict[str, str], log_dir: Path, timeout: float = 180.0) -> Iterator[Settings]:
    """The three services as child processes with `env` (e.g. `own_stack_env`), serving
    until the block ends (then SIGTERM); yields the settings that reach them."""
    settings = Settings(
        pathway_grpc=env["PATHWAY_GRPC_ADDR"],
        coordination_grpc=env["COORDINATION_GRPC_ADDR"],
        discharge_grpc=env["DISCHARGE_GRPC_ADDR"],
    )
    processes = [
        ServiceProcess(spec.module, spec.address, log_dir / f"{spec.name}.log", env=env).start()
        for spec in services(settings)
    ]
    try:
        for process in processes:
            process.wait_serving(timeout)
        yield settings
    finally:
        for process in processes:
            process.stop()
