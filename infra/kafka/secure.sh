# Secure mode of kafka.sh (KAFKA_SECURITY=sasl_ssl), sourced by it: the broker's listener
# settings, its certificates, SCRAM users and client settings, the ACLs. See SECURE.md.
# shellcheck shell=bash

ACL_PLAN="$SCRIPT_DIR/acls.toml"
SCRAM=SCRAM-SHA-512
BROKER_CN=overgang-kafka-broker

principals() {  # the principals of the ACL plan, then admin
    sed -n 's/^\[principals\.\([A-Za-z0-9_-]*\)\].*/\1/p' "$ACL_PLAN"
    echo admin
}

check_mode() {  # a data dir keeps the security mode it was formatted with
    local dir=$1 formatted
    case "$SECURITY" in
        plaintext | sasl_ssl) ;;
        *) die "KAFKA_SECURITY must be plaintext or sasl_ssl, not '$SECURITY'" ;;
    esac
    [[ -f "$dir/kraft/meta.properties" ]] || return 0
    formatted=$(cat "$dir/security.mode" 2>/dev/null || echo plaintext)
    [[ "$formatted" == "$SECURITY" ]] || die "$dir was formatted with KAFKA_SECURITY=$formatted," \
        "not $SECURITY: use another OVERGANG_KAFKA_DATA, or 'kafka.sh clean' first"
}

# secure_material DIR PORT: CA, broker certificate and passwords (once); client env files (each start)
secure_material() {
    local dir=$1 port=$2 sec=$1/secure
    command -v openssl >/dev/null || die "openssl not found (needed for the secure broker's certificates)"
    mkdir -p "$sec"
    chmod 700 "$sec"
    (
        umask 077
        cd "$sec"
        if [[ ! -s ca.crt ]]; then
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
                -keyout ca.key -out ca.crt -subj "/CN=overgang local Kafka CA" \
                -addext "basicConstraints=critical,CA:TRUE" \
                -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
            rm -f broker.pem
        fi
        if [[ ! -s broker.pem ]]; then
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -keyout broker.key -out broker.csr -subj "/CN=$BROKER_CN" 2>/dev/null
            printf '%s\n' "subjectAltName=IP:$HOST,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
                "keyUsage=critical,digitalSignature,keyEncipherment" \
                "extendedKeyUsage=serverAuth,clientAuth" >broker.ext
            openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
                -extfile broker.ext -out broker.crt 2>/dev/null
            # Kafka's PEM keystore: an unencrypted PKCS#8 key followed by the certificate
            openssl pkcs8 -topk8 -nocrypt -in broker.key -out broker.pk8
            cat broker.pk8 broker.crt >broker.pem
            rm -f broker.csr broker.ext broker.pk8
        fi
        local name
        while read -r name; do
            [[ "$name" =~ ^[a-z0-9_-]+$ ]] || die "principal '$name' in $ACL_PLAN: use [a-z0-9_-]"
            [[ -s "$name.password" ]] || head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$name.password"
            printf '%s\n' "KAFKA_BOOTSTRAP_SERVERS=$HOST:$port" "KAFKA_SECURITY_PROTOCOL=SASL_SSL" \
                "KAFKA_SASL_MECHANISM=$SCRAM" "KAFKA_SASL_USERNAME=$name" \
                "KAFKA_SASL_PASSWORD_FILE=$sec/$name.password" "KAFKA_SSL_CAFILE=$sec/ca.crt" >"$name.env"
        done < <(principals)
    )
}

scram_args() {  # one --add-scram per principal, for kafka-storage format
    local sec=$1 name
    while read -r name; do
        printf '%s\n' --add-scram "$SCRAM=[name=$name,password=$(cat "$sec/$name.password")]"
    done < <(principals)
}

single_secure_only() {
    [[ "$SECURITY" == plaintext ]] || die "KAFKA_SECURITY=$SECURITY is for the single node only"
}

# secure_listener_config DIR PORT CONTROLLER_PORT: SASL_SSL for clients, mTLS for the controller
secure_listener_config() {
    local port=$2 cport=$3 sec=$1/secure
    cat <<EOF
listeners=BROKER://$HOST:$port,CONTROLLER://$HOST:$cport
advertised.listeners=BROKER://$HOST:$port
inter.broker.listener.name=BROKER
controller.listener.names=CONTROLLER
listener.security.protocol.map=BROKER:SASL_SSL,CONTROLLER:SSL
sasl.enabled.mechanisms=$SCRAM
sasl.mechanism.inter.broker.protocol=$SCRAM
listener.name.broker.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(cat "$sec/admin.password")";
listener.name.controller.ssl.client.auth=required
ssl.keystore.type=PEM
ssl.keystore.location=$sec/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$sec/ca.crt
ssl.endpoint.identification.algorithm=https
ssl.enabled.protocols=TLSv1.3,TLSv1.2
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:CN=$BROKER_CN
allow.everyone.if.no.acl.found=false
EOF
}

client_env() {  # client_env NAME: the settings file of a principal of the secure node
    local file="$DATA_DIR/secure/${1:?principal name (admin, pathway, ...)}.env"
    [[ -f "$file" ]] || die "no $file: start the secure node first (kafka.sh start-secure)"
    echo "$file"
}
cmd_acls() {
    local py
    py=$(pick_python) || die "no python with kafka-python found (KAFKA_PYTHON)"
    "$py" "$ADMIN_PY" apply-acls "$ACL_PLAN" --env "$(client_env admin)"
}
cmd_start_secure() {
    SECURITY=sasl_ssl
    cmd_start >/dev/null
    cmd_wait
    cmd_acls
    log "client settings: $DATA_DIR/secure/<principal>.env ($(principals | tr '\n' ' '))"
    single_bootstrap
}
