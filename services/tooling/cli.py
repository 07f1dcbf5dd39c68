"""The `overgang` command line."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence

from discharge.rules import ConfigError, load_profile, load_rates
from overgang.config import load_settings
from overgang.events import OSLO
from tooling.launcher import ServiceFailed
from tooling.replay import read_events, replay, write_errors, write_json, write_table


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


def cmd_up(args: argparse.Namespace) -> int:
    from tooling import stack

    settings = load_settings()
    env: dict[str, str] = {}
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        env["KAFKA_BOOTSTRAP_SERVERS"] = stack.start_kafka()
        print(f"kafka         {env['KAFKA_BOOTSTRAP_SERVERS']}")
    try:
        for line in stack.up(settings, env):
            print(line)
    except ServiceFailed as exc:
        print(f"overgang up: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from tooling import stack

    for line in stack.down(load_settings(), keep_kafka=args.keep_kafka):
        print(line)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from tooling.clients import cmd_submit as submit

    return submit(load_settings(), args.file, args.token, sys.stdout)


def cmd_tasks(args: argparse.Namespace) -> int:
    from tooling.clients import cmd_tasks as tasks

    return tasks(load_settings(), args.unit, args.follow, args.after, args.token, sys.stdout)


def cmd_pathway(args: argparse.Namespace) -> int:
    from tooling.clients import cmd_pathway as pathway

    return pathway(load_settings(), args.episode_id, args.token, sys.stdout)


def cmd_demo(args: argparse.Namespace) -> int:
    from tooling.demo import run_demo

    return run_demo(episodes=args.episodes, keep_running=args.keep_running)


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

    token = argparse.ArgumentParser(add_help=False)
    token.add_argument(
        "--token",
        default=os.environ.get("OVERGANG_TOKEN") or None,
        help="bearer token (default: OVERGANG_TOKEN)",
    )

    p = commands.add_parser("up", help="start local Kafka and the three services")
    p.set_defaults(func=cmd_up)
    p = commands.add_parser("down", help="stop the services and local Kafka")
    p.add_argument("--keep-kafka", action="store_true", help="leave the broker running")
    p.set_defaults(func=cmd_down)
    p = commands.add_parser(
        "submit",
        parents=[token],
        help="send events (JSON lines) to the running services",
        description='Each line: an Event (replay format) or {"event": {...}, '
        '"nationalId": "..."}. Hospital events go to PathwayService, municipal '
        "answers and service-ready reports to CoordinationService.",
    )
    p.add_argument("file")
    p.set_defaults(func=cmd_submit)
    p = commands.add_parser("tasks", parents=[token], help="a unit's coordination tasks")
    p.add_argument(
        "--unit", required=True, help="e.g. HEALTH_OFFICE or HEALTH_OFFICE/MADLA_HILLEVAAG"
    )
    p.add_argument("--follow", action="store_true", help="keep streaming live updates")
    p.add_argument("--after", type=int, default=0, help="resume after this sequence number")
    p.set_defaults(func=cmd_tasks)
    p = commands.add_parser("pathway", parents=[token], help="one episode's pathway and liability")
    p.add_argument("episode_id")
    p.set_defaults(func=cmd_pathway)
    p = commands.add_parser("demo", help="a simulated month end to end (see README)")
    p.add_argument("--episodes", type=int, default=240)
    p.add_argument("--keep-running", action="store_true", help="leave the services up")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
