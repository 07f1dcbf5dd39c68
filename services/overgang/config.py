"""Runtime settings, read once from the environment (12-factor)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _data_dir() -> Path:
    # Relative to the working directory, not to the code: an installed wheel works too.
    return Path(_env("OVERGANG_DATA_DIR", ".data")).resolve()


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = field(
        default_factory=lambda: _env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    )
    # Partitions of the keyed event topics; all co-partitioned topics share it.
    topic_partitions: int = field(
        default_factory=lambda: int(_env("OVERGANG_TOPIC_PARTITIONS", "6"))
    )
    replication_factor: int = field(
        default_factory=lambda: int(_env("OVERGANG_REPLICATION_FACTOR", "1"))
    )
    database_url: str = field(
        default_factory=lambda: _env("DATABASE_URL", f"sqlite:///{_data_dir() / 'pathway.db'}")
    )
    coordination_database_url: str = field(
        default_factory=lambda: _env(
            "COORDINATION_DATABASE_URL", f"sqlite:///{_data_dir() / 'coordination.db'}"
        )
    )
    # Coordination routing rules: a directory with default.toml and <kommunenummer>.toml
    # overrides; empty = the rules shipped with the service.
    coordination_rules_dir: str = field(
        default_factory=lambda: _env("OVERGANG_COORDINATION_RULES_DIR", "")
    )
    # How often the coordination service escalates overdue tasks (seconds).
    coordination_sla_seconds: float = field(
        default_factory=lambda: float(_env("OVERGANG_COORDINATION_SLA_SECONDS", "60"))
    )
    # Key for the keyed HMAC that pseudonymises national ids. Must be set in production.
    pseudonym_key: str = field(
        default_factory=lambda: _env("OVERGANG_PSEUDONYM_KEY", "dev-only-not-secret")
    )
    pathway_grpc: str = field(default_factory=lambda: _env("PATHWAY_GRPC_ADDR", "127.0.0.1:50051"))
    discharge_grpc: str = field(
        default_factory=lambda: _env("DISCHARGE_GRPC_ADDR", "127.0.0.1:50052")
    )
    coordination_grpc: str = field(
        default_factory=lambda: _env("COORDINATION_GRPC_ADDR", "127.0.0.1:50053")
    )
    # Bearer tokens -> roles, "token=role,token=role"; empty disables auth (local dev only).
    auth_tokens: str = field(default_factory=lambda: _env("OVERGANG_AUTH_TOKENS", ""))
    rates_file: str = field(default_factory=lambda: _env("OVERGANG_RATES_FILE", ""))
    rule_profile_file: str = field(default_factory=lambda: _env("OVERGANG_PROFILE_FILE", ""))
    data_dir: Path = field(default_factory=lambda: _data_dir())
    # Fixed "today" (YYYY-MM-DD) for demos and tests that replay a past month; empty in
    # production, where today is the Europe/Oslo date of the wall clock.
    clock_date: str = field(default_factory=lambda: _env("OVERGANG_CLOCK_DATE", ""))
    # Appended to Faust app ids (consumer groups, changelog topics): lets tests and a
    # second deployment on the same cluster keep their own state.
    app_id_suffix: str = field(default_factory=lambda: _env("OVERGANG_APP_ID_SUFFIX", ""))
    tls_cert: str = field(default_factory=lambda: _env("OVERGANG_TLS_CERT", ""))
    tls_key: str = field(default_factory=lambda: _env("OVERGANG_TLS_KEY", ""))
    tls_client_ca: str = field(default_factory=lambda: _env("OVERGANG_TLS_CLIENT_CA", ""))


def load_settings() -> Settings:
    return Settings()


def wall_clock(settings: Settings) -> Callable[[], dt.datetime]:
    """The services' "now": the real time, or, with OVERGANG_CLOCK_DATE, that day's Oslo
    midnight (a demo replaying a past month sees deadlines as they stood that day)."""
    if not settings.clock_date:
        return lambda: dt.datetime.now(dt.UTC)
    fixed = dt.datetime.combine(
        dt.date.fromisoformat(settings.clock_date), dt.time(0), tzinfo=ZoneInfo("Europe/Oslo")
    ).astimezone(dt.UTC)
    return lambda: fixed
