"""Admin chores of infra/kafka/kafka.sh that need the Kafka protocol (kafka-python only,
so that any python with kafka-python will do):

    kafka_admin.py probe BOOTSTRAP NEED [--env FILE]   exit 0 once NEED brokers are unfenced
    kafka_admin.py principals PLAN                     the principal names of an ACL plan
    kafka_admin.py apply-acls PLAN --env FILE          make the plan's principals' ACLs exactly
                                                       the plan (adds missing, deletes others)
    kafka_admin.py show-acls --env FILE                print every ACL on the broker

--env FILE: the client settings as overgang reads them (KAFKA_BOOTSTRAP_SERVERS,
KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME,
KAFKA_SASL_PASSWORD_FILE, KAFKA_SSL_CAFILE), one KEY=VALUE a line; `kafka.sh start-secure`
writes one per principal in <data>/secure/<name>.env.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)

TOPIC, GROUP = ResourceType.TOPIC, ResourceType.GROUP
LITERAL, PREFIXED = ACLResourcePatternType.LITERAL, ACLResourcePatternType.PREFIXED
DESCRIBE_PREFIX = "overgang."


def read_env(path: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in Path(path).read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def client_options(env: dict[str, str]) -> dict[str, Any]:
    protocol = env.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl.create_default_context(cafile=env.get("KAFKA_SSL_CAFILE"))
    if protocol.startswith("SASL_"):
        options["sasl_mechanism"] = env.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
        options["sasl_plain_username"] = env["KAFKA_SASL_USERNAME"]
        options["sasl_plain_password"] = Path(env["KAFKA_SASL_PASSWORD_FILE"]).read_text().strip()
    return options


def admin(bootstrap: str, env: dict[str, str], **more: Any) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="overgang-kafka-admin", **client_options(env), **more
    )


def _allow(
    principal: str, operation: ACLOperation, kind: ResourceType, name: str, pattern: Any
) -> ACL:
    return ACL(
        f"User:{principal}",
        "*",
        operation,
        ACLPermissionType.ALLOW,
        ResourcePattern(kind, name, pattern),
    )


def plan_acls(principal: str, body: dict[str, list[str]]) -> set[ACL]:
    """The ACLs one principal of the plan gets."""
    acls = {_allow(principal, ACLOperation.DESCRIBE, TOPIC, DESCRIBE_PREFIX, PREFIXED)}
    for topic in body.get("read", []):
        acls.add(_allow(principal, ACLOperation.READ, TOPIC, topic, LITERAL))
    for topic in body.get("write", []):
        acls.add(_allow(principal, ACLOperation.WRITE, TOPIC, topic, LITERAL))
    for topic in {*body.get("read", []), *body.get("write", [])}:
        acls.add(_allow(principal, ACLOperation.CREATE, TOPIC, topic, LITERAL))
    for group in body.get("groups", []):
        acls.add(_allow(principal, ACLOperation.READ, GROUP, group, PREFIXED))
    for prefix in body.get("internal", []):
        acls.add(_allow(principal, ACLOperation.ALL, TOPIC, prefix, PREFIXED))
    return acls


def load_plan(path: str) -> dict[str, dict[str, list[str]]]:
    import tomllib  # here: `probe` runs on any python 3 with kafka-python

    with open(path, "rb") as handle:
        principals: dict[str, dict[str, list[str]]] = tomllib.load(handle)["principals"]
    return principals


def _acls_of(client: KafkaAdminClient, principal: str | None) -> set[ACL]:
    """The ACLs of User:<principal>; principal None: every ACL."""
    acl_filter = ACLFilter(
        principal=f"User:{principal}" if principal else None,
        host="*",
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    found, error = client.describe_acls(acl_filter)
    if error.errno:
        raise SystemExit(f"describe_acls for {principal}: {error}")
    return set(found)


def apply_acls(client: KafkaAdminClient, plan: dict[str, dict[str, list[str]]]) -> tuple[int, int]:
    """Returns (added, deleted)."""
    added = deleted = 0
    for principal, body in plan.items():
        wanted, present = plan_acls(principal, body), _acls_of(client, principal)
        missing, extra = wanted - present, present - wanted
        if missing:
            result = client.create_acls(sorted(missing, key=repr))
            if result["failed"]:
                raise SystemExit(f"create_acls for {principal}: {result['failed']}")
        if extra:
            client.delete_acls(sorted(extra, key=repr))
        added, deleted = added + len(missing), deleted + len(extra)
    return added, deleted


def probe(bootstrap: str, need: int, env: dict[str, str]) -> int:
    client = admin(bootstrap, env, request_timeout_ms=5000, bootstrap_timeout_ms=5000)
    try:
        brokers = [b for b in client.describe_cluster()["brokers"] if not b.get("is_fenced")]
        client.list_topics()
    finally:
        client.close()
    if len(brokers) < need:
        print(f"{len(brokers)}/{need} brokers unfenced", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_probe = sub.add_parser("probe")
    p_probe.add_argument("bootstrap")
    p_probe.add_argument("need", type=int)
    p_probe.add_argument("--env", default="")
    sub.add_parser("principals").add_argument("plan")
    p_apply = sub.add_parser("apply-acls")
    p_apply.add_argument("plan")
    p_apply.add_argument("--env", required=True)
    sub.add_parser("show-acls").add_argument("--env", required=True)
    args = parser.parse_args(argv)
    if args.command == "principals":
        print("\n".join(load_plan(args.plan)))
        return 0
    env = read_env(args.env) if args.env else {}
    if args.command == "probe":
        return probe(args.bootstrap, args.need, env)
    client = admin(env["KAFKA_BOOTSTRAP_SERVERS"], env)
    try:
        if args.command == "show-acls":
            for acl in sorted(_acls_of(client, None), key=repr):
                print(acl)
            return 0
        added, deleted = apply_acls(client, load_plan(args.plan))
        print(f"ACLs: {added} added, {deleted} deleted", file=sys.stderr)
        return 0
    finally:
        client.close()


if __name__ == "__main__":
    raise SystemExit(main())
