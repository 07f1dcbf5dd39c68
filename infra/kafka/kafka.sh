#!/usr/bin/env bash
# Real Apache Kafka (KRaft combined broker+controller) for local development and tests,
# without Docker: jars from Maven Central (infra/kafka/pom.xml), run with the machine's Java 17+.
#
#   kafka.sh fetch            download the broker jars into the cache (once)
#   kafka.sh start            format + start the single-node broker in the background; prints bootstrap
#   kafka.sh wait             block until the broker answers the Kafka protocol
#   kafka.sh stop             stop it (SIGTERM, then SIGKILL after KAFKA_STOP_SECONDS)
#   kafka.sh status           exit 0 if running (prints pid + bootstrap), 3 if not
#   kafka.sh clean            stop everything and delete the data dir
#   kafka.sh bootstrap        print the single-node bootstrap address
#   kafka.sh start-cluster    3-node KRaft cluster (fault tests); prints bootstrap
#   kafka.sh wait-cluster     block until all 3 brokers are registered and unfenced
#   kafka.sh stop-cluster | status-cluster
#   kafka.sh stop-node N | start-node N    stop/start one cluster node (N = 1..3)
#   kafka.sh start-secure     single node with SASL_SSL and ACLs (KAFKA_SECURITY=sasl_ssl start +
#                             wait + acls); prints bootstrap; client settings <data>/secure/<name>.env
#   kafka.sh acls             make the secure broker's ACLs those of acls.toml (as admin)
#   kafka.sh client-env NAME  print the client settings of principal NAME (admin, pathway, ...)
#
# Secure mode (KAFKA_SECURITY=sasl_ssl, single node only): one SASL_SSL listener (SCRAM-SHA-512;
# broker certificate from a CA generated in <data>/secure), the controller listener on mTLS,
# StandardAuthorizer with super.users=admin, one SCRAM user per principal of acls.toml created
# at format time, passwords in <data>/secure/<name>.password (mode 600). A data dir keeps the
# mode it was formatted with. Code: secure.sh (sourced); notes: SECURE.md.
#
# Environment:
#   OVERGANG_KAFKA_HOME  jar cache root      (default ~/.cache/overgang/kafka; jars in <root>/<version>/libs)
#   OVERGANG_KAFKA_DATA  data dir            (default <repo>/.kafka; cluster nodes in <data>/cluster/nodeN)
#   KAFKA_PORT           single-node port    (default 19092; controller = +1; cluster nodes +10/+20/+30)
#   KAFKA_WAIT_SECONDS   wait timeout        (default 90)
#   KAFKA_STOP_SECONDS   SIGTERM grace       (default 30)
#   KAFKA_HEAP_OPTS      JVM heap            (default "-Xms128m -Xmx512m")
#   KAFKA_PYTHON         python with kafka-python for `wait` (default <repo>/.venv/bin/python, then python3)
#   JAVA_HOME            java to use         (default: java on PATH)
#   KAFKA_SECURITY       plaintext | sasl_ssl (default: as the data dir was formatted, else plaintext)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
POM="$SCRIPT_DIR/pom.xml"
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n 1)
CACHE_DIR="${OVERGANG_KAFKA_HOME:-${HOME:?HOME is not set}/.cache/overgang/kafka}/$KAFKA_VERSION"
LIBS="$CACHE_DIR/libs"
MARKER="$CACHE_DIR/.complete"
DATA_DIR="${OVERGANG_KAFKA_DATA:-$REPO_ROOT/.kafka}"
CLUSTER_DIR="$DATA_DIR/cluster"
HOST=127.0.0.1
PORT="${KAFKA_PORT:-19092}"
WAIT_SECONDS="${KAFKA_WAIT_SECONDS:-90}"
STOP_SECONDS="${KAFKA_STOP_SECONDS:-30}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
CLUSTER_NODES=(1 2 3)
# default: the mode the single node's data dir was formatted with, else plaintext
SECURITY="${KAFKA_SECURITY:-$(cat "$DATA_DIR/security.mode" 2>/dev/null || echo plaintext)}"
ADMIN_PY="$SCRIPT_DIR/kafka_admin.py"

log() { echo "kafka.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=infra/kafka/secure.sh
source "$SCRIPT_DIR/secure.sh"  # KAFKA_SECURITY=sasl_ssl: certificates, SCRAM users, ACLs

# ---------------------------------------------------------------------------------------- fetch
pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }
fetched() { [[ -d "$LIBS" && -f "$MARKER" && "$(cat "$MARKER")" == "$(pom_hash)" ]]; }

cmd_fetch() {
    fetched && return 0
    command -v mvn >/dev/null || die "mvn not found (needed once to fetch Kafka $KAFKA_VERSION jars)"
    mkdir -p "$CACHE_DIR"
    exec 9>"$CACHE_DIR/.lock"
    flock -w 900 9 || die "timed out waiting for another fetch ($CACHE_DIR/.lock)"
    if ! fetched; then
        local tmp t0=$SECONDS
        tmp=$(mktemp -d "$CACHE_DIR/fetch.XXXXXX")
        cp "$POM" "$tmp/pom.xml"
        log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $LIBS"
        if ! (cd "$tmp" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
                -DoutputDirectory="$tmp/libs" >"$tmp/mvn.log" 2>&1); then
            tail -n 40 "$tmp/mvn.log" >&2
            rm -rf "$tmp"
            die "mvn dependency:copy-dependencies failed"
        fi
        local n_slf4j
        n_slf4j=$(find "$tmp/libs" -name 'slf4j-api-*.jar' | wc -l)
        [[ -f "$tmp/libs/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after fetch"; }
        [[ "$n_slf4j" == 1 ]] || { rm -rf "$tmp"; die "expected exactly one slf4j-api jar, got $n_slf4j"; }
        rm -rf "$LIBS"
        mv "$tmp/libs" "$LIBS"
        pom_hash >"$MARKER"
        rm -rf "$tmp"
        log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars in $((SECONDS - t0))s"
    fi
    exec 9>&-   # never let the broker inherit the lock
}

# ------------------------------------------------------------------------------------- helpers
port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# node_pid DIR -> prints pid if the broker of DIR is alive (checks the cmdline, not just the pid)
node_pid() {
    local dir=$1 pid
    [[ -f "$dir/broker.pid" ]] || return 1
    pid=$(cat "$dir/broker.pid")
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-Dovergang.kafka.node=$dir " || return 1
    echo "$pid"
}

log_tail() {
    local dir=$1
    echo "----- tail of $dir/broker.log -----" >&2
    tail -n "${2:-60}" "$dir/broker.log" >&2 2>/dev/null || echo "(no broker.log)" >&2
    if [[ -s "$dir/stdout.log" ]]; then
        echo "----- tail of $dir/stdout.log -----" >&2
        tail -n 20 "$dir/stdout.log" >&2
    fi
}

cluster_id() {  # cluster_id FILE: the cluster id, generated once and persisted
    local f=$1
    if [[ ! -s "$f" ]]; then
        "$JAVA" -cp "$LIBS/*" kafka.tools.StorageTool random-uuid >"$f.tmp"
        mv "$f.tmp" "$f"
    fi
    cat "$f"
}

# listener_config DIR PORT CONTROLLER_PORT: the listener lines of server.properties
listener_config() {
    local dir=$1 port=$2 cport=$3
    if [[ "$SECURITY" == plaintext ]]; then
        cat <<EOF
listeners=PLAINTEXT://$HOST:$port,CONTROLLER://$HOST:$cport
advertised.listeners=PLAINTEXT://$HOST:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
EOF
        return
    fi
    secure_listener_config "$dir" "$port" "$cport"
}

# write_config DIR NODE_ID PORT CONTROLLER_PORT VOTERS RF MIN_ISR INTERNAL_PARTITIONS
write_config() {
    local dir=$1 id=$2 port=$3 cport=$4 voters=$5 rf=$6 misr=$7 parts=$8
    mkdir -p "$dir/kraft"
    touch "$dir/server.properties"
    chmod 600 "$dir/server.properties"  # in secure mode it holds the admin's password
    cat >"$dir/server.properties" <<EOF
# generated by infra/kafka/kafka.sh - edits are overwritten on start
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
$(listener_config "$dir" "$port" "$cport")
log.dirs=$dir/kraft
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$misr
auto.create.topics.enable=false
delete.topic.enable=true
unclean.leader.election.enable=false
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=$parts
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$misr
transaction.state.log.num.partitions=$parts
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$misr
share.coordinator.state.topic.num.partitions=$parts
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=33554432
EOF
    cat >"$dir/log4j2.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by infra/kafka/kafka.sh -->
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="FILE" fileName="$dir/broker.log" filePattern="$dir/broker.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="50 MB"/></Policies>
      <DefaultRolloverStrategy max="2"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="FILE"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="org.apache.kafka.clients" level="WARN"/>
  </Loggers>
</Configuration>
EOF
}

# start_node DIR NODE_ID PORT CONTROLLER_PORT VOTERS RF MIN_ISR INTERNAL_PARTITIONS CLUSTER_ID_FILE
start_node() {
    local dir=$1 id=$2 port=$3 cport=$4 voters=$5 rf=$6 misr=$7 parts=$8 cidfile=$9 pid
    check_mode "$dir"
    if pid=$(node_pid "$dir"); then
        log "node $id already running (pid $pid, $HOST:$port)"
        return 0
    fi
    local p
    for p in "$port" "$cport"; do
        port_open "$p" && die "port $p on $HOST is already in use by another process (not the broker of $dir)"
    done
    cmd_fetch
    command -v "$JAVA" >/dev/null || die "java not found (need Java 17+)"
    mkdir -p "$dir"
    [[ "$SECURITY" == plaintext ]] || secure_material "$dir" "$port"
    write_config "$dir" "$id" "$port" "$cport" "$voters" "$rf" "$misr" "$parts"
    if [[ ! -f "$dir/kraft/meta.properties" ]]; then
        local cid scram=()
        cid=$(cluster_id "$cidfile")
        [[ "$SECURITY" == plaintext ]] || mapfile -t scram < <(scram_args "$dir/secure")
        # Static quorum (controller.quorum.voters) => format WITHOUT --standalone.
        # (format.log lists the salted SCRAM credentials: mode 600)
        rm -f "$dir/format.log"
        if ! (umask 077 && "$JAVA" -cp "$LIBS/*" kafka.tools.StorageTool format -t "$cid" \
                -c "$dir/server.properties" --ignore-formatted "${scram[@]}" >"$dir/format.log" 2>&1); then
            cat "$dir/format.log" >&2
            die "kafka-storage format failed for $dir"
        fi
        echo "$SECURITY" >"$dir/security.mode"
    fi
    # keep the previous run's log aside so a failure tail shows this run only
    [[ -f "$dir/broker.log" ]] && mv -f "$dir/broker.log" "$dir/broker.prev.log"
    rm -f "$dir/stdout.log" "$dir"/broker.log.[0-9]*
    # setsid: own session, so Ctrl-C in the calling terminal / pytest does not hit the broker.
    # shellcheck disable=SC2086
    setsid nohup "$JAVA" $HEAP_OPTS \
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
        -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$dir/log4j2.xml" -Dlog4j2.shutdownHookEnabled=false \
        -Dkafka.logs.dir="$dir" -Dovergang.kafka.node="$dir" \
        -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" \
        </dev/null >"$dir/stdout.log" 2>&1 &
    echo $! >"$dir/broker.pid"
    log "started Kafka $KAFKA_VERSION node $id (pid $!) on $HOST:$port, log $dir/broker.log"
}

stop_node() {
    local dir=$1 pid
    if ! pid=$(node_pid "$dir"); then
        rm -f "$dir/broker.pid"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_SECONDS))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid still alive after ${STOP_SECONDS}s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$dir/broker.pid"
    log "stopped broker of $dir (pid $pid)"
}

pick_python() {
    local py
    for py in "${KAFKA_PYTHON:-}" "$REPO_ROOT/.venv/bin/python" python3; do
        [[ -n "$py" ]] && command -v "$py" >/dev/null && "$py" -c 'import kafka' 2>/dev/null && { echo "$py"; return 0; }
    done
    return 1
}

# One protocol-level probe (kafka_admin.py probe): DescribeCluster must list >= N unfenced
# brokers, Metadata must answer. PROBE_ENV: client settings file (secure mode: the admin's).
PROBE_ENV=""

# wait_ready BOOTSTRAP NEED_BROKERS DIR...
wait_ready() {
    local bootstrap=$1 need=$2; shift 2
    local dirs=("$@") py="" d t0=$SECONDS
    local deadline=$((SECONDS + WAIT_SECONDS))
    py=$(pick_python) || log "WARNING: no python with kafka-python found; falling back to log+TCP check"
    while :; do
        for d in "${dirs[@]}"; do
            if ! node_pid "$d" >/dev/null; then
                log_tail "$d"
                die "broker of $d is not running"
            fi
        done
        if [[ -n "$py" ]]; then
            # probe only once the listener is up: kafka-python blocks for bootstrap_timeout_ms otherwise
            port_open "${bootstrap##*:}" && timeout 20 "$py" "$ADMIN_PY" probe "$bootstrap" "$need" \
                ${PROBE_ENV:+--env "$PROBE_ENV"} >/dev/null 2>&1 && break
        else
            local ok=1
            for d in "${dirs[@]}"; do grep -q 'Kafka Server started' "$d/broker.log" 2>/dev/null || ok=0; done
            ((ok)) && port_open "${bootstrap##*:}" && break
        fi
        if ((SECONDS >= deadline)); then
            for d in "${dirs[@]}"; do log_tail "$d"; done
            die "Kafka at $bootstrap not ready after ${WAIT_SECONDS}s"
        fi
        sleep 0.5
    done
    log "Kafka at $bootstrap is ready ($((SECONDS - t0))s)"
}

# ------------------------------------------------------------------------------- single node
single_bootstrap() { echo "$HOST:$PORT"; }

cmd_start() {
    start_node "$DATA_DIR" 1 "$PORT" $((PORT + 1)) "1@$HOST:$((PORT + 1))" 1 1 1 "$DATA_DIR/cluster.id"
    single_bootstrap
}
cmd_wait() {
    [[ "$SECURITY" == plaintext ]] || PROBE_ENV="$DATA_DIR/secure/admin.env"
    wait_ready "$(single_bootstrap)" 1 "$DATA_DIR"
}
cmd_stop() { stop_node "$DATA_DIR"; }
cmd_status() {
    local pid mode
    mode=$(cat "$DATA_DIR/security.mode" 2>/dev/null || echo plaintext)
    if pid=$(node_pid "$DATA_DIR"); then
        echo "running pid=$pid bootstrap=$(single_bootstrap) security=$mode data=$DATA_DIR version=$KAFKA_VERSION"
    else
        echo "stopped data=$DATA_DIR version=$KAFKA_VERSION"
        return 3
    fi
}

# ----------------------------------------------------------------------------------- cluster
node_dir() { echo "$CLUSTER_DIR/node$1"; }
node_port() { echo $((PORT + 10 * $1)); }
cluster_voters() {
    local n v=()
    for n in "${CLUSTER_NODES[@]}"; do v+=("$n@$HOST:$(($(node_port "$n") + 1))"); done
    (IFS=,; echo "${v[*]}")
}
cluster_bootstrap() {
    local n b=()
    for n in "${CLUSTER_NODES[@]}"; do b+=("$HOST:$(node_port "$n")"); done
    (IFS=,; echo "${b[*]}")
}
check_node() { [[ "${1:-}" =~ ^[123]$ ]] || die "node must be 1, 2 or 3"; }

cmd_start_node() {
    single_secure_only
    check_node "${1:-}"
    local n=$1 port
    port=$(node_port "$n")
    mkdir -p "$CLUSTER_DIR"
    start_node "$(node_dir "$n")" "$n" "$port" $((port + 1)) "$(cluster_voters)" 3 2 3 "$CLUSTER_DIR/cluster.id"
}
cmd_stop_node() { check_node "${1:-}"; stop_node "$(node_dir "$1")"; }

cmd_start_cluster() {
    cmd_fetch
    local n
    for n in "${CLUSTER_NODES[@]}"; do cmd_start_node "$n"; done
    cluster_bootstrap
}
cmd_wait_cluster() {
    local n dirs=()
    for n in "${CLUSTER_NODES[@]}"; do dirs+=("$(node_dir "$n")"); done
    wait_ready "$(cluster_bootstrap)" "${#CLUSTER_NODES[@]}" "${dirs[@]}"
}
cmd_stop_cluster() {
    # SIGTERM all nodes at once: stopping them one by one makes the last ones wait for a quorum.
    local n pids=()
    for n in "${CLUSTER_NODES[@]}"; do
        stop_node "$(node_dir "$n")" &
        pids+=($!)
    done
    for n in "${pids[@]}"; do wait "$n"; done
}
cmd_status_cluster() {
    local n pid rc=0
    for n in "${CLUSTER_NODES[@]}"; do
        if pid=$(node_pid "$(node_dir "$n")"); then
            echo "node$n running pid=$pid $HOST:$(node_port "$n")"
        else
            echo "node$n stopped $HOST:$(node_port "$n")"
            rc=3
        fi
    done
    echo "bootstrap=$(cluster_bootstrap)"
    return $rc
}

cmd_clean() {
    cmd_stop
    cmd_stop_cluster
    case "$DATA_DIR" in
        "" | "/" | "$HOME" | "$REPO_ROOT") die "refusing to delete data dir '$DATA_DIR'" ;;
    esac
    rm -rf "$DATA_DIR"
    log "removed $DATA_DIR"
}

usage() { sed -n '2,36p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

case "${1:-}" in
    fetch) cmd_fetch; echo "$LIBS" ;;
    start) cmd_start ;;
    wait) cmd_wait ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    clean) cmd_clean ;;
    bootstrap) single_bootstrap ;;
    start-secure) cmd_start_secure ;;
    acls) cmd_acls ;;
    client-env) cat "$(client_env "${2:-}")" ;;
    start-cluster) cmd_start_cluster ;;
    wait-cluster) cmd_wait_cluster ;;
    stop-cluster) cmd_stop_cluster ;;
    status-cluster) cmd_status_cluster ;;
    start-node) cmd_start_node "${2:-}" ;;
    stop-node) cmd_stop_node "${2:-}" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
esac
