"""The layout tells the architecture: the shared kernel speaks only the published
language, each domain core is free of Kafka, gRPC and SQL, and tooling sits on top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"
SERVICE_PACKAGES = {"pathway", "discharge", "coordination", "tooling"}
INFRASTRUCTURE = {"faust", "aiokafka", "kafka", "grpc", "sqlalchemy", "sqlmodel", "alembic"}
MAX_LINES = 350


def _modules(package: str) -> list[Path]:
    return [p for p in sorted((SERVICES / package).rglob("*.py")) if "/v1/" not in p.as_posix()]


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("module", _modules("overgang"), ids=lambda p: p.name)
def test_shared_kernel_imports_no_service(module: Path) -> None:
    assert not _imported_roots(module) & SERVICE_PACKAGES


@pytest.mark.parametrize(
    "module",
    [p for s in ("pathway", "discharge", "coordination") for p in _modules(f"{s}/domain")],
    ids=lambda p: f"{p.parent.parent.name}/{p.name}",
)
def test_domain_core_imports_no_kafka_grpc_or_sql(module: Path) -> None:
    assert not _imported_roots(module) & INFRASTRUCTURE


@pytest.mark.parametrize("service", ["pathway", "discharge", "coordination"], ids=lambda s: s)
def test_services_never_import_the_tooling(service: str) -> None:
    for module in _modules(service):
        assert "tooling" not in _imported_roots(module), module


@pytest.mark.parametrize("service", ["pathway", "discharge", "coordination"], ids=lambda s: s)
def test_services_import_no_other_service(service: str) -> None:
    others = {"pathway", "discharge", "coordination"} - {service}
    for module in _modules(service):
        assert not _imported_roots(module) & others, module


def test_no_source_module_is_over_the_size_limit() -> None:
    too_long = {
        str(p.relative_to(SERVICES)): n
        for package in ("overgang", *SERVICE_PACKAGES)
        for p in _modules(package)
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert too_long == {}
