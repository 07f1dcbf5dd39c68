"""`overgang audit`: the audit trail (topic overgang.audit.v1) for ops and the
data-protection officer: who read which episode, and which calls were refused.

Reads the topic with the environment's Kafka settings (KAFKA_BOOTSTRAP_SERVERS and the
TLS/SASL variables; with ACLs only the ops principal may read it), from `--since` (a date
or an RFC 3339 time, via the broker's time index) to the end, and prints the records that
match every filter, oldest first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, TextIO

from overgang.audit_record import OK, REFUSED, AuditRecord

AUDIT_HELP = """\
exit status:
  0  printed (perhaps nothing matched)
  2  bad option, or the audit topic could not be read (Kafka settings, ACLs)
"""


def since_value(text: str) -> dt.datetime:
    """A date (from its midnight, UTC) or an RFC 3339 time with an offset."""
    try:
        if len(text) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(0), tzinfo=dt.UTC)
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date YYYY-MM-DD or a time like 2026-12-01T08:00:00+01:00"
        ) from None
    if stamp.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs an offset (Z or +01:00)")
    return stamp


@dataclass(frozen=True)
class AuditFilter:
    since: dt.datetime | None = None
    identity: str = ""
    episode: str = ""
    outcome: str = ""

    def matches(self, entry: AuditRecord) -> bool:
        return (
            (self.since is None or entry.time >= self.since)
            and (not self.identity or entry.identity == self.identity)
            and (not self.episode or entry.mentions(self.episode))
            and (not self.outcome or entry.outcome == self.outcome)
        )


def format_line(entry: AuditRecord) -> str:
    """One record as a line: time, outcome, who, where from, what, about what."""
    who = f"{entry.identity or '(unauthenticated)'} [{entry.role or '-'}]"
    about = entry.episode_id or ",".join(entry.episode_ids)
    query = " ".join(f"{k}={v}" for k, v in sorted(entry.query.items()))
    parts = [entry.at, entry.outcome, who, entry.peer, f"{entry.service}.{entry.rpc or '?'}"]
    parts += [text for text in (about, query, entry.detail) if text]
    return "  ".join(parts)


def write_records(
    records: Iterable[AuditRecord], wanted: AuditFilter, out: TextIO, as_json: bool
) -> int:
    """Print the matching records; returns how many."""
    count = 0
    for entry in sorted((r for r in records if wanted.matches(r)), key=lambda r: r.time):
        line = json.dumps(asdict(entry), ensure_ascii=False) if as_json else format_line(entry)
        out.write(line + "\n")
        count += 1
    return count


def cmd_audit(args: argparse.Namespace) -> int:
    from overgang.config import load_settings
    from overgang.kafka.audit_sink import read_audit

    wanted = AuditFilter(args.since, args.identity or "", args.episode or "", args.outcome or "")
    try:
        records = list(read_audit(load_settings(), since=args.since))
    except Exception as exc:  # Kafka settings, ACLs, a broker that does not answer
        print(f"overgang audit: cannot read the audit topic: {exc}", file=sys.stderr)
        return 2
    count = write_records(records, wanted, sys.stdout, args.json)
    print(f"{count} of {len(records)} records", file=sys.stderr)
    return 0


def add_audit_command(commands: Any) -> None:
    """Register `overgang audit` on the CLI's subparsers."""
    p = commands.add_parser(
        "audit",
        help="who read which patient's data, and which calls were refused",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        epilog=AUDIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--since", type=since_value, help="from this date or time (default: all)")
    p.add_argument("--identity", help="only this caller (the token's name)")
    p.add_argument("--episode", help="only records naming this episode id")
    p.add_argument("--outcome", choices=[OK, REFUSED], help="only reads (ok) or refusals")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_audit)
