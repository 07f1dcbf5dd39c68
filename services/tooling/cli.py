"""The `overgang` command line."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from discharge.domain.profile import NO_2019, RuleProfile
from discharge.domain.rates import HOW_TO_ADD_RATES, RateTable
from discharge.rules import load_profile, load_rates
from overgang.config import load_settings, wall_clock
from overgang.events import oslo_day
from tooling.audit_cli import add_audit_command
from tooling.launcher import ServiceFailed
from tooling.replay import read_events, replay, write_errors, write_json, write_table
from tooling.views import add_view_commands

EXIT_OK = 0
EXIT_REPORTED = 1  # some lines or episodes reported: bad lines, conflicts, errors
EXIT_CONFIG = 2  # configuration error: rates or profile file, environment, unreadable input

REPLAY_HELP = """\
One event per line (proto3 JSON of overgang.v1.Event), in any order. Prints one
statement per episode (episodeId order): status, start, end, liable days (priced or
rate-pending), rate-pending days, NOK (priced days only), void reason, payer. A line that
does not parse or breaks a rule is reported on stderr with its number and reason, and
the other lines are still computed; conflicts (two events with one id, a notice after
death) are listed per episode (stderr, and "conflicts" in --json). Liable days in a
year without a rate are counted as rate-pending and named in a note on stderr.

exit status:
  0  all fine (rate-pending days alone are fine)
  1  some lines or episodes reported: bad lines, conflicts, episodes not computed
  2  configuration error: bad rates or profile file, bad environment setting,
     unreadable input file
"""


def write_rates(rates: RateTable, today: dt.date, out: TextIO) -> None:
    """The rate table in force, and the years without a rate up to `today`'s year."""
    out.write(f"rates in force: {rates.source or '(built in)'}\n")
    for year in rates.years():
        out.write(f"  {year}  NOK {rates.nok_per_day[year]} per day\n")
    years = rates.years()
    missing = rates.missing_years(years[0], today.year) if years else ()
    if missing:
        listed = ", ".join(str(y) for y in missing)
        out.write(f"missing: {listed} (liable days there are rate-pending: {HOW_TO_ADD_RATES})\n")
    else:
        out.write(f"missing: none up to {today.year}\n")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


@dataclass(frozen=True)
class _Config:
    today: dt.date  # Oslo, from the services' wall clock (OVERGANG_CLOCK_DATE fixes it)
    rates: RateTable
    profile: RuleProfile


def _config(command: str, args: argparse.Namespace, with_profile: bool) -> _Config | None:
    """The environment, rate table and rule profile; None once it printed why not."""
    where = "bad environment setting: "
    try:
        settings = load_settings()
        today = oslo_day(wall_clock(settings)())
        where = ""  # the rates and profile errors name their file
        rates = load_rates(args.rates or settings.rates_file or None)
        profile = NO_2019
        if with_profile:
            profile = load_profile(args.profile or settings.rule_profile_file or None)
    except (ValueError, OSError) as exc:  # ConfigError, a bad setting, an unreadable file
        print(f"overgang {command}: {where}{exc}", file=sys.stderr)
        return None
    return _Config(today, rates, profile)


def cmd_replay(args: argparse.Namespace) -> int:
    config = _config("replay", args, with_profile=True)
    if config is None:
        return EXIT_CONFIG
    try:
        with open(args.file, "rb") as handle:  # bytes: a line of bad UTF-8 is one bad line
            events, line_errors = read_events(handle)
    except OSError as exc:
        print(f"overgang replay: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_CONFIG
    result = replay(events, args.as_of or config.today, config.rates, config.profile)
    result.line_errors[:0] = line_errors
    if args.json:
        write_json(result, sys.stdout)
    else:
        write_table(result, sys.stdout)
    write_errors(result, sys.stderr)
    return EXIT_REPORTED if result.reported else EXIT_OK


def cmd_rates(args: argparse.Namespace) -> int:
    config = _config("rates", args, with_profile=False)
    if config is None:
        return EXIT_CONFIG
    write_rates(config.rates, config.today, sys.stdout)
    return EXIT_OK


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
    from tooling.submit import cmd_submit as submit

    return submit(load_settings(), args.file, args.token, sys.stdout, sys.stderr)


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
    add_audit_command(commands)

    p = commands.add_parser(
        "replay",
        help="print liability statements for a file of events (JSON lines)",
        description=REPLAY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="events, one JSON object per line")
    p.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    p.add_argument(
        "--as-of",
        type=_date,
        help="the statement as it stood when this Oslo date began: only events before it, "
        "complete days before it (default: today)",
    )
    p.add_argument("--rates", help="rate table TOML (default: OVERGANG_RATES_FILE or built-in)")
    p.add_argument(
        "--profile", help="rule profile TOML (default: OVERGANG_PROFILE_FILE or no-2019)"
    )
    p.set_defaults(func=cmd_replay)

    p = commands.add_parser(
        "rates",
        help="print the daily rates in force and the years without a rate",
        description="The rate table in force (its source, year -> NOK per day) and the years "
        "between its first year and this year that have no rate (liable days there are "
        "rate-pending). Exit status 0, or 2 for a bad rates file.",
    )
    p.add_argument("--rates", help="rate table TOML (default: OVERGANG_RATES_FILE or built-in)")
    p.set_defaults(func=cmd_rates)

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
    add_view_commands(commands, token)
    p = commands.add_parser("demo", help="a simulated month end to end (see README)")
    p.add_argument("--episodes", type=int, default=240)
    p.add_argument("--keep-running", action="store_true", help="leave the services up")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # the reader went away, e.g. `overgang statement --csv | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_REPORTED


if __name__ == "__main__":
    raise SystemExit(main())
