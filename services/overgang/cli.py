"""The `overgang` command line."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence

from overgang.config import load_settings
from overgang.domain.events import OSLO
from overgang.replay import read_events, replay, write_errors, write_json, write_table
from overgang.rules_config import ConfigError, load_profile, load_rates


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def today_in_oslo() -> dt.date:
    return dt.datetime.now(OSLO).date()


def cmd_replay(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        rates = load_rates(args.rates or settings.rates_file or None)
        profile = load_profile(args.profile or settings.rule_profile_file or None)
    except (ConfigError, OSError) as exc:
        print(f"overgang replay: {exc}", file=sys.stderr)
        return 2
    try:
        with open(args.file, encoding="utf-8") as handle:
            events, errors = read_events(handle)
    except OSError as exc:
        print(f"overgang replay: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    result = replay(events, args.as_of or today_in_oslo(), rates, profile)
    result.errors[:0] = errors
    if args.json:
        write_json(result, sys.stdout)
    else:
        write_table(result, sys.stdout)
    write_errors(result, sys.stderr)
    return 1 if result.errors else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="overgang",
        description="Hand-over of discharge-ready patients from hospital to municipality.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser(
        "replay",
        help="print liability statements for a file of events (JSON lines)",
        description="One event per line (proto3 JSON of overgang.v1.Event), in any order. "
        "Exit status 1 when a line or an episode was rejected (the rest is still printed).",
    )
    p.add_argument("file", help="events, one JSON object per line")
    p.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    p.add_argument(
        "--as-of",
        type=_date,
        help="count complete days before this Oslo date in running periods (default: today)",
    )
    p.add_argument("--rates", help="rate table TOML (default: OVERGANG_RATES_FILE or built-in)")
    p.add_argument("--profile", help="rule profile TOML (default: no-2019)")
    p.set_defaults(func=cmd_replay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
