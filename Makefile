# Overgang: see README.md. Every target installs what it needs into .venv.
SHELL := /bin/bash
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PROTO_OUT := services
PROTOS := $(wildcard proto/overgang/v1/*.proto)

.PHONY: install proto proto-check lint test test-unit test-fault bench bench-state demo kafka-start kafka-stop clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Generated stubs are committed; `proto-check` fails if they drift from proto/.
proto: install
	mkdir -p $(PROTO_OUT)/overgang/v1
	$(BIN)/python -m grpc_tools.protoc -I proto \
	  --plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy \
	  --plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc \
	  --python_out=$(PROTO_OUT) --grpc_python_out=$(PROTO_OUT) \
	  --mypy_out=$(PROTO_OUT) --mypy_grpc_out=$(PROTO_OUT) $(PROTOS)
	touch $(PROTO_OUT)/overgang/v1/__init__.py

proto-check: proto
	@git diff --exit-code -- $(PROTO_OUT)/overgang/v1 \
	  || (echo "generated stubs are stale: run 'make proto' and commit" >&2; exit 1)
	@test -z "$$(git status --porcelain -- $(PROTO_OUT)/overgang/v1)" \
	  || (echo "untracked generated stubs: run 'make proto' and commit" >&2; exit 1)

lint: install
	$(BIN)/ruff check services tests
	$(BIN)/ruff format --check services tests
	$(BIN)/mypy

kafka-start:
	infra/kafka/kafka.sh start && infra/kafka/kafka.sh wait

kafka-stop:
	infra/kafka/kafka.sh stop

test-unit: install
	$(BIN)/python -m pytest tests/unit -q

test: install proto-check lint
	$(BIN)/python -m pytest tests -q

# Only the fault tests (outages, kills, broker failure, rebalance); `make test` runs them too.
test-fault: install
	$(BIN)/python -m pytest tests/fault -q

# Hot paths and `overgang replay` through the CLI, as ratios to json.loads of the same
# lines measured in the same run (BENCHMARKS.md); a few minutes, not part of `make test`.
bench: install
	$(BIN)/python -m tooling.bench

# A national year (1 000 000 events) through `overgang replay`; the file is made once.
bench-national: install
	$(BIN)/python -m tooling.bench_replay --events 1000000

# python -m discharge on real Kafka vs a bare aiokafka consumer (own broker, port 19292).
bench-live: install
	$(BIN)/python -m tooling.bench_live $(BENCH_LIVE_ARGS)

# The local stack under load over gRPC: event -> task p50/p99 (own broker, port 19492);
# e.g. make load LOAD_ARGS="--rate 30 --seconds 120".
LOAD_ARGS ?=
load: install
	$(BIN)/python -m tooling.load $(LOAD_ARGS)
.PHONY: bench-national bench-live bench-recovery load

# The discharge worker's state as history grows: ticks, memory, restores (BENCHMARKS.md).
bench-state: install
	$(BIN)/python -m tooling.bench_state

# Cold start of a discharge worker on the changelog five years leave (issue 10, item 4).
bench-recovery: install
	$(BIN)/python -m tooling.bench_recovery

demo: install
	$(BIN)/overgang demo

clean:
	rm -rf $(VENV) .kafka .kafka-test .pytest_cache .mypy_cache .ruff_cache
