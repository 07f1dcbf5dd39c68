"""Runtime settings, read once from the environment (12-factor)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_set(name: str, default: str) -> str:
    """Like `_env`, but a variable set to "" is "" (e.g. a disabled listener)."""
    value = os.environ.get(name)
    return default if value is None else value.strip()


def _flag(name: str) -> bool:
    return _env(name, "").lower() in {"1", "true", "yes", "on"}


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
    discharge_database_url: str = field(
        default_factory=lambda: _env(
            "DISCHARGE_DATABASE_URL", f"sqlite:///{_data_dir() / 'discharge.db'}"
        )
    )
    # Days a clock stays in the discharge worker's hot table after it settled (no running
    # period, no rate-pending day) before it moves to the archive in that database.
    clock_retention_days: int = field(
        default_factory=lambda: int(_env("OVERGANG_CLOCK_RETENTION_DAYS", "30"))
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
        default_factory=lambda: _env("OVERGANG_PSEUDONYM_KEY", "dev-only-not-secret"),
        repr=False,
    )
    # Versioned pseudonym keys, lines "v<N>=<secret>" (the highest N is current): required
    # beyond loopback (pathway.domain.pseudonym.load_keys).
    pseudonym_key_file: str = field(default_factory=lambda: _env("OVERGANG_PSEUDONYM_KEY_FILE", ""))
    # Plausibility windows of event times (overgang.plausibility); empty = the built-in file.
    plausibility_file: str = field(default_factory=lambda: _env("OVERGANG_PLAUSIBILITY_FILE", ""))
    # Days a published outbox row is kept before the relay deletes it.
    outbox_keep_days: int = field(
        default_factory=lambda: int(_env("OVERGANG_OUTBOX_KEEP_DAYS", "7"))
    )
    pathway_grpc: str = field(default_factory=lambda: _env("PATHWAY_GRPC_ADDR", "127.0.0.1:50051"))
    discharge_grpc: str = field(
        default_factory=lambda: _env("DISCHARGE_GRPC_ADDR", "127.0.0.1:50052")
    )
    # How the other discharge workers reach this one's LiabilityService (they forward
    # calls for the partitions it owns); default: DISCHARGE_GRPC_ADDR.
    discharge_advertised: str = field(
        default_factory=lambda: _env(
            "DISCHARGE_ADVERTISED_ADDR", _env("DISCHARGE_GRPC_ADDR", "127.0.0.1:50052")
        )
    )
    coordination_grpc: str = field(
        default_factory=lambda: _env("COORDINATION_GRPC_ADDR", "127.0.0.1:50053")
    )
    # Prometheus /metrics per service (overgang.metrics_watch); "" or "off": none.
    pathway_metrics: str = field(
        default_factory=lambda: _env_set("PATHWAY_METRICS_ADDR", "127.0.0.1:9461")
    )
    coordination_metrics: str = field(
        default_factory=lambda: _env_set("COORDINATION_METRICS_ADDR", "127.0.0.1:9462")
    )
    discharge_metrics: str = field(
        default_factory=lambda: _env_set("DISCHARGE_METRICS_ADDR", "127.0.0.1:9463")
    )
    # Bearer tokens -> roles, "token=role,token=role" (overgang.grpc.tokens), and/or a file
    # of "sha256:<hex>=<role> [<name>]" lines. None at all disables auth: loopback only.
    auth_tokens: str = field(default_factory=lambda: _env("OVERGANG_AUTH_TOKENS", ""), repr=False)
    auth_tokens_file: str = field(default_factory=lambda: _env("OVERGANG_AUTH_TOKENS_FILE", ""))
    # Lets a service without auth or TLS listen beyond loopback, and talk plaintext to a
    # remote Kafka: a throwaway development setup, never production.
    insecure_dev: bool = field(default_factory=lambda: _flag("OVERGANG_INSECURE_DEV"))
    rates_file: str = field(default_factory=lambda: _env("OVERGANG_RATES_FILE", ""))
    # How often the discharge service looks for a changed rate table (seconds).
    rates_poll_seconds: float = field(
        default_factory=lambda: float(_env("OVERGANG_RATES_POLL_SECONDS", "30"))
    )
    rule_profile_file: str = field(default_factory=lambda: _env("OVERGANG_PROFILE_FILE", ""))
    data_dir: Path = field(default_factory=lambda: _data_dir())
    # Fixed "today" (YYYY-MM-DD) for demos and tests that replay a past month; empty in
    # production, where today is the Europe/Oslo date of the wall clock.
    clock_date: str = field(default_factory=lambda: _env("OVERGANG_CLOCK_DATE", ""))
    # Appended to Faust app ids (consumer groups, changelog topics): lets tests and a
    # second deployment on the same cluster keep their own state.
    app_id_suffix: str = field(default_factory=lambda: _env("OVERGANG_APP_ID_SUFFIX", ""))
    # faust's own log (rebalances, recovery); WARNING keeps it quiet, INFO for diagnosis.
    faust_log_level: str = field(default_factory=lambda: _env("OVERGANG_FAUST_LOGLEVEL", "WARNING"))
    # A changelog recovery with records left that receives none this long restarts the
    # worker (discharge/recovery_watchdog.py).
    recovery_stall_seconds: float = field(
        default_factory=lambda: float(_env("OVERGANG_RECOVERY_STALL_SECONDS", "60"))
    )
    tls_cert: str = field(default_factory=lambda: _env("OVERGANG_TLS_CERT", ""))
    tls_key: str = field(default_factory=lambda: _env("OVERGANG_TLS_KEY", ""))
    tls_client_ca: str = field(default_factory=lambda: _env("OVERGANG_TLS_CLIENT_CA", ""))
    # Client side (the CLI): trust this CA (=> TLS), and present this certificate (mTLS).
    tls_ca: str = field(default_factory=lambda: _env("OVERGANG_TLS_CA", ""))
    tls_client_cert: str = field(default_factory=lambda: _env("OVERGANG_TLS_CLIENT_CERT", ""))
    tls_client_key: str = field(default_factory=lambda: _env("OVERGANG_TLS_CLIENT_KEY", ""))
    # gRPC resource limits: largest request accepted, RPCs in flight (streams included).
    grpc_max_message_bytes: int = field(
        default_factory=lambda: int(_env("OVERGANG_GRPC_MAX_MESSAGE_BYTES", str(1024 * 1024)))
    )
    grpc_max_concurrent_rpcs: int = field(
        default_factory=lambda: int(_env("OVERGANG_GRPC_MAX_CONCURRENT_RPCS", "256"))
    )
    # Kafka transport security for every client (overgang.kafka.security).
    kafka_security_protocol: str = field(
        default_factory=lambda: _env("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
    )
    kafka_sasl_mechanism: str = field(
        default_factory=lambda: _env("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512").upper()
    )
    kafka_sasl_username: str = field(default_factory=lambda: _env("KAFKA_SASL_USERNAME", ""))
    kafka_sasl_password: str = field(
        default_factory=lambda: _env("KAFKA_SASL_PASSWORD", ""), repr=False
    )
    kafka_sasl_password_file: str = field(
        default_factory=lambda: _env("KAFKA_SASL_PASSWORD_FILE", "")
    )
    kafka_ssl_cafile: str = field(default_factory=lambda: _env("KAFKA_SSL_CAFILE", ""))
    kafka_ssl_certfile: str = field(default_factory=lambda: _env("KAFKA_SSL_CERTFILE", ""))
    kafka_ssl_keyfile: str = field(default_factory=lambda: _env("KAFKA_SSL_KEYFILE", ""))


def host_of(address: str) -> str:
    """ "host:port", "[v6]:port" or "host" -> host."""
    address = address.strip()
    if address.startswith("["):
        return address[1:].partition("]")[0]
    if address.count(":") > 1:  # a bare IPv6 address
        return address
    return address.rpartition(":")[0] if ":" in address else address


def is_loopback(address: str) -> bool:
    """Every address of a comma-separated list is on this machine only: 127.0.0.0/8, ::1,
    localhost, or a unix socket. 0.0.0.0 / :: (all interfaces) are not."""
    addresses = [a.strip() for a in address.split(",") if a.strip()]
    return bool(addresses) and all(_one_loopback(a) for a in addresses)


def _one_loopback(address: str) -> bool:
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host = host_of(address.split("://", 1)[-1]).lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
