"""The ops and finance views of the `overgang` command line: sla, statement, report, board,
and the disputes of liable days (dispute, resolve-dispute). Each talks to the running
services over gRPC (the addresses and token as for `submit`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a view runs: `overgang replay` needs no gRPC
    from tooling.clients import Clients
    from tooling.month import Scope

EXIT_OK, EXIT_FAILED = 0, 1


def _month(text: str) -> str:
    from tooling.month import parse_month

    try:
        parse_month(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _date(text: str) -> Any:
    import datetime as dt

    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        day = None
    if day is None or len(text) != 10:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD")
    return day


def _scope(args: argparse.Namespace) -> Scope:
    from tooling.month import Scope

    return Scope(args.month, args.municipality or "", getattr(args, "hospital", None) or "")


def _run(args: argparse.Namespace, view: Any) -> int:
    """Connects, runs `view(clients, settings)`, reports an RPC failure in one line."""
    import grpc

    from overgang.config import load_settings
    from tooling.clients import Clients, describe_error

    settings = load_settings()
    clients = Clients(settings, args.token)
    try:
        return int(view(clients, settings))
    except grpc.RpcError as error:
        print(f"overgang {args.command}: {describe_error(error)}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        clients.close()


def cmd_sla(args: argparse.Namespace) -> int:
    from overgang.config import wall_clock
    from tooling.month import gather
    from tooling.sla import sla_json, write_sla, write_sla_json

    def view(clients: Clients, settings: Any) -> int:
        data = gather(clients, _scope(args), wall_clock(settings)(), with_tasks=False)
        (write_sla_json if args.json else write_sla)(sla_json(data), sys.stdout)
        return EXIT_OK

    return _run(args, view)


def cmd_statement(args: argparse.Namespace) -> int:
    from overgang.config import wall_clock
    from pathway.municipalities import load_municipalities
    from tooling import statement
    from tooling.month import MonthData, monthly_statements

    def view(clients: Clients, settings: Any) -> int:
        scope = _scope(args)
        data = MonthData(scope, wall_clock(settings)())
        since = args.since.isoformat() if args.since else ""
        data.monthly = monthly_statements(clients, scope, sorted(load_municipalities()), since)
        if args.csv:
            statement.write_csv(data, sys.stdout, sys.stderr, args.delimiter)
        elif args.json:
            statement.write_json(data, sys.stdout)
        else:
            statement.write_table(data, sys.stdout)
        return EXIT_OK

    return _run(args, view)


def default_dispute_id(episode_id: str, days: list[str], reason: str) -> str:
    """From the content: the same command run again (after a lost answer) is a repeat."""
    import hashlib

    digest = hashlib.sha256("|".join([episode_id, *sorted(days), reason]).encode()).hexdigest()
    return f"d-{digest[:20]}"


def _show_dispute(dispute: Any, as_json: bool) -> None:
    from tooling.statement import date_ranges, dispute_json

    if as_json:
        import json

        print(json.dumps({"episodeId": dispute.episode_id, **dispute_json(dispute)}, indent=2))
        return
    from tooling.statement import dispute_state

    days = date_ranges([argparse.Namespace(date=d) for d in dispute.days])
    note = f"; note: {dispute.resolution_note}" if dispute.resolution_note else ""
    print(
        f"dispute {dispute.dispute_id} {dispute_state(dispute)}: {dispute.episode_id} {days} "
        f"(payer {dispute.municipality}): {dispute.reason}{note}"
    )


def cmd_dispute(args: argparse.Namespace) -> int:
    from overgang.v1 import liability_pb2
    from tooling.clients import RPC_TIMEOUT

    days = [d for text in args.days for d in text.split(",") if d]
    request = liability_pb2.DisputeDaysRequest(
        dispute_id=args.id or default_dispute_id(args.episode_id, days, args.reason),
        episode_id=args.episode_id,
        days=days,
        reason=args.reason,
    )

    def view(clients: Clients, _settings: Any) -> int:
        answer = clients.liability.DisputeDays(request, timeout=RPC_TIMEOUT, metadata=clients.md)
        _show_dispute(answer, args.json)
        return EXIT_OK

    return _run(args, view)


def cmd_resolve_dispute(args: argparse.Namespace) -> int:
    from overgang.v1 import liability_pb2
    from tooling.clients import RPC_TIMEOUT

    resolution = liability_pb2.DISPUTE_ACCEPTED if args.accept else liability_pb2.DISPUTE_REJECTED
    request = liability_pb2.ResolveDisputeRequest(
        dispute_id=args.dispute_id, resolution=resolution, note=args.note
    )

    def view(clients: Clients, _settings: Any) -> int:
        answer = clients.liability.ResolveDispute(request, timeout=RPC_TIMEOUT, metadata=clients.md)
        _show_dispute(answer, args.json)
        return EXIT_OK

    return _run(args, view)


def add_dispute_commands(commands: Any, token: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "dispute",
        parents=[token],
        help="dispute liable days of an episode (the paying municipality)",
        description="DisputeDays: the payer's coordinator or finance office marks liable days "
        "as disputed, with a reason. The clock's days stay as they are; statements show the "
        "disputed days and NOK beside them.",
    )
    p.add_argument("episode_id")
    p.add_argument(
        "--days", nargs="+", required=True, help="YYYY-MM-DD dates (space or comma separated)"
    )
    p.add_argument("--reason", required=True, help="why (1-500 characters)")
    p.add_argument("--id", help="the dispute id (default: derived from the content)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dispute)

    p = commands.add_parser(
        "resolve-dispute",
        parents=[token],
        help="accept or reject a dispute (the episode's hospital)",
        description="ResolveDispute: the hospital accepts (the days should not be paid) or "
        "rejects (they are liable) an open dispute, with a note.",
    )
    p.add_argument("dispute_id")
    verdict = p.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--accept", action="store_true")
    verdict.add_argument("--reject", action="store_true")
    p.add_argument("--note", required=True, help="1-500 characters")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_resolve_dispute)


def cmd_report(args: argparse.Namespace) -> int:
    from overgang.config import wall_clock
    from tooling.month import gather
    from tooling.report import write_report

    def view(clients: Clients, settings: Any) -> int:
        data = gather(clients, _scope(args), wall_clock(settings)())
        print(write_report(data, Path(args.out)).resolve())
        if args.png:
            from tooling.screenshot import NoChromium, screenshot

            try:
                print(screenshot(Path(args.out), Path(args.png)).resolve())
            except NoChromium as exc:
                print(f"overgang report: {exc}", file=sys.stderr)
                return EXIT_FAILED
        return EXIT_OK

    return _run(args, view)


def cmd_board(args: argparse.Namespace) -> int:
    from overgang.config import load_settings
    from tooling.board import run_board

    return run_board(
        load_settings(), args.token, args.interval, args.municipality or "", args.hospital or ""
    )


def add_view_commands(commands: Any, token: argparse.ArgumentParser) -> None:
    month = argparse.ArgumentParser(add_help=False)
    month.add_argument("--month", required=True, type=_month, help="YYYY-MM")
    month.add_argument("--municipality", help="payer kommunenummer (default: every one)")
    month.add_argument("--hospital", help="the hospital's HER-id (default: every one)")

    p = commands.add_parser(
        "sla",
        parents=[token, month],
        help="pathway SLAs of a month: time to service ready and discharge, liable days",
        description="Per municipality and division, for the episodes with a discharge-ready "
        "notice in the month: days from the notice to service ready and to discharge "
        "(median, p90), liable days per episode, share received on the day they were ready.",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sla)

    p = commands.add_parser(
        "statement",
        parents=[token, month],
        help="a month's liability statement: days, dates, rate, amount, evidence",
        description="GetMonthlyStatement for the payer (--municipality), the hospital "
        "(--hospital) or every known municipality: per episode and period the liable days "
        "with their dates, the rate, rate-pending days, NOK and the evidence event ids.",
    )
    form = p.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true", help="CSV for import (totals on stderr)")
    form.add_argument("--json", action="store_true")
    p.add_argument("--delimiter", default=",", help="CSV field separator (default ,)")
    p.add_argument(
        "--since",
        type=_date,
        help="also the corrections made after this date YYYY-MM-DD (e.g. the last "
        "statement's as-of date): cause, days reversed/added, NOK delta (not in --csv)",
    )
    p.set_defaults(func=cmd_statement)

    p = commands.add_parser(
        "report",
        parents=[token, month],
        help="a month's report as one self-contained HTML file (SVG plots)",
    )
    p.add_argument("--out", default="report.html", help="the HTML file to write")
    p.add_argument("--png", help="also a screenshot of it (headless Chromium, 1200x1600)")
    p.set_defaults(func=cmd_report)

    p = commands.add_parser(
        "board",
        parents=[token],
        help="a live terminal board: stages, running clocks, overdue tasks, dead letters",
    )
    p.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    p.add_argument("--municipality", help="only this payer's (kommunenummer)")
    p.add_argument("--hospital", help="only this hospital's (HER-id)")
    p.set_defaults(func=cmd_board)
    add_dispute_commands(commands, token)
