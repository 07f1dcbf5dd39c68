"""The ops and finance views as a user runs them: three service processes on the test
broker, a small simulated March 2024 sent with `overgang submit` (the demo's submit-ready
format), then `overgang sla`, `statement`, `report` (opened in headless Chromium) and
`board` (in a pseudo-terminal, stopped with SIGINT). The expected figures come from the
simulated events themselves and from `overgang replay` on them."""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import io
import json
import math
import os
import pty
import random
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import termios
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from discharge.rules import load_profile, load_rates
from overgang.codec import event_to_json
from overgang.config import Settings
from overgang.events import OSLO, Division, EpisodeEvent, EventKind, oslo_day
from overgang.v1 import pathway_pb2
from pathway.domain.state_machine import MUNICIPAL_DESTINATIONS
from tooling.clients import Clients, Submission
from tooling.demo import compare_with_replay, escalated_tasks
from tooling.replay import replay
from tooling.report import BREACHED_COLOUR, RECEIVED_COLOUR
from tooling.screenshot import CHROMIUM_INSTALL, find_chromium, png_pixels
from tooling.simulation import happened_before, simulate_month, synthetic_national_id
from tooling.stack import own_stack_env, running
from tooling.statement import CSV_COLUMNS
from tooling.submit import write_submit_file
from tooling.svg import PALETTE

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.timeout(600)]
CLOCK = dt.date(2024, 4, 1)
CUTOFF = dt.datetime.combine(CLOCK, dt.time(0), tzinfo=OSLO)
EPISODES = 30
DISCHARGED = EventKind.DISCHARGED
NOTICE = EventKind.DISCHARGE_READY_NOTIFIED
# What ends a liability period (an answer after it answers nothing in force).
ENDS = (EventKind.SERVICE_READY, DISCHARGED, EventKind.DISCHARGE_READY_WITHDRAWN, EventKind.DIED)


def elapsed_days(start: dt.datetime, end: dt.datetime) -> float:
    """In UTC: the simulation's Oslo times would subtract as wall-clock times (the month
    ends with the change to summer time)."""
    return (end.astimezone(dt.UTC) - start.astimezone(dt.UTC)).total_seconds() / 86_400


@dataclass
class Month:
    env: dict[str, str]
    settings: Settings
    her_id: str
    events: list[EpisodeEvent]  # what happened by the clock date, as simulated
    submitted: subprocess.CompletedProcess[str]
    tmp: Path

    def of(self, episode: str, kind: EventKind) -> list[EpisodeEvent]:
        return [e for e in self.events if e.episode_id == episode and e.kind is kind]

    def after(self, notice: EpisodeEvent, kind: EventKind) -> EpisodeEvent | None:
        later = [e for e in self.of(notice.episode_id, kind) if e.occurred_at > notice.occurred_at]
        return later[0] if later else None

    def first_answer_days(self, notice: EpisodeEvent) -> float | None:
        """Days from the notice to the first answer while it is in force (none: None)."""
        since = notice.occurred_at
        ends = [e.occurred_at for k in ENDS for e in self.of(notice.episode_id, k)]
        end = min((t for t in ends if t >= since), default=None)
        answers = sorted(
            e.occurred_at
            for e in self.of(notice.episode_id, EventKind.MUNICIPALITY_ANSWERED)
            if e.occurred_at >= since and (end is None or e.occurred_at <= end)
        )
        return elapsed_days(since, answers[0]) if answers else None


def overgang(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tooling.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def month(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Month]:
    tmp = tmp_path_factory.mktemp("views")
    env = own_stack_env(
        kafka_bootstrap,
        tmp / "data",
        OVERGANG_CLOCK_DATE=CLOCK.isoformat(),
        OVERGANG_COORDINATION_SLA_SECONDS="1",  # escalate overdue tasks within a second
    )
    with running(env, tmp) as settings:
        her_id = str(random.randint(60_000, 69_999))
        simulated = simulate_month(2024, 3, EPISODES, seed=11, her_id=her_id)
        hospital, municipal = happened_before(simulated, CUTOFF)
        rnd = random.Random(3)
        ids = {s.episode_id: synthetic_national_id(rnd) for s in simulated}
        path = write_submit_file(tmp / "submit.jsonl", hospital, municipal, ids)
        submitted = overgang(env, "submit", str(path))
        clients = Clients(settings)
        try:  # until the services' statements equal replay's and the SLA timer escalated
            equal, total, _, _ = compare_with_replay(clients, [*hospital, *municipal])
            assert equal == total, f"{equal}/{total} statements equal replay's"
            escalated_tasks(clients, CUTOFF)
        finally:
            clients.close()
        yield Month(env, settings, her_id, [*hospital, *municipal], submitted, tmp)


def test_submit_takes_the_demo_format_and_shows_progress(month: Month) -> None:
    lines = len(month.events)
    assert month.submitted.returncode == 0, month.submitted.stdout[-2000:]
    assert f"submitted: {lines} accepted, 0 rejected" in month.submitted.stdout
    assert f"{lines}/{lines} lines (100 %)" in month.submitted.stderr


def test_submit_of_a_replay_format_file_fails_fast(month: Month) -> None:
    her_id = str(random.randint(70_000, 79_999))
    hospital, municipal = happened_before(simulate_month(2024, 3, 4, seed=2, her_id=her_id), CUTOFF)
    path = month.tmp / "replay-format.jsonl"
    path.write_text("".join(event_to_json(e) + "\n" for e in [*hospital, *municipal]))
    started = time.monotonic()
    result = overgang(month.env, "submit", str(path))
    assert time.monotonic() - started < 15  # was 20 s per answer
    assert result.returncode == 1
    unknown = re.findall(r"is unknown: its first event \(line \d+\) was rejected", result.stdout)
    assert len(unknown) == len(municipal)
    assert "for lack of a national id" in result.stdout
    assert f"submitted: 0 accepted, {len(hospital) + len(municipal)} rejected" in result.stdout


def test_statement_json_csv_and_table_reconcile_with_replay(month: Month) -> None:
    expected = replay(month.events, CLOCK, load_rates(), load_profile()).statements
    days, nok = sum(s.liable_days for s in expected), sum(s.amount_nok for s in expected)
    scope = ("--month", "2024-03", "--hospital", month.her_id)
    data = json.loads(overgang(month.env, "statement", *scope, "--json").stdout)
    assert (data["liableDays"], data["amountNok"], data["pendingDays"]) == (days, nok, 0)
    by_episode = {s.episode_id: s for s in expected}
    for line in data["lines"]:
        statement = by_episode[line["episodeId"]]
        assert (line["liableDays"], line["amountNok"]) == (
            statement.liable_days,
            statement.amount_nok,
        )
        notices = {p["evidence"]["notice"] for p in line["periods"]}
        assert notices <= {
            e.event_id for e in month.of(line["episodeId"], EventKind.DISCHARGE_READY_NOTIFIED)
        }
        for period in line["periods"]:
            assert period["rateNok"] == "5745" and len(period["days"]) == period["liableDays"]
            assert period["end"] == "" or period["evidence"]["end"]

    result = overgang(month.env, "statement", *scope, "--csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert sum(int(r["liable_days"]) for r in rows) == days
    assert sum(int(r["amount_nok"]) for r in rows) == nok
    for row in rows:
        assert int(row["amount_nok"]) == int(row["liable_days"]) * int(row["rate_nok_per_day"])
        assert sum(_days_in(r) for r in row["dates"].split(";")) == int(row["liable_days"])
    assert f"liable days (0 rate-pending), NOK {nok}" in result.stderr

    table = overgang(month.env, "statement", *scope).stdout
    assert f"total: {len(data['lines'])} episodes, {days} liable days" in table


def _days_in(run: str) -> int:
    first, _, last = run.partition("/")
    return (dt.date.fromisoformat(last or first) - dt.date.fromisoformat(first)).days + 1


def spread_of(values: list[float]) -> dict[str, float]:
    """n, median and nearest-rank p90, as the sla view rounds them."""
    p90 = sorted(values)[max(0, math.ceil(0.9 * len(values)) - 1)]
    return {"n": len(values), "median": round(statistics.median(values), 1), "p90": round(p90, 1)}


def test_sla_figures_follow_from_the_simulated_events(month: Month) -> None:
    report = json.loads(
        overgang(
            month.env, "sla", "--month", "2024-03", "--hospital", month.her_id, "--json"
        ).stdout
    )
    everyone = report["groups"][0]
    episodes = sorted({e.episode_id for e in month.events})
    assert everyone["patients"] == len(episodes) == EPISODES
    to_discharge, to_service, received, same_day = [], [], 0, 0
    for episode in episodes:
        notice = month.of(episode, EventKind.DISCHARGE_READY_NOTIFIED)[-1]
        ready, out = month.after(notice, EventKind.SERVICE_READY), month.after(notice, DISCHARGED)
        if ready is not None:
            to_service.append((oslo_day(ready.occurred_at) - oslo_day(notice.occurred_at)).days)
        if out is None:
            continue
        to_discharge.append(elapsed_days(notice.occurred_at, out.occurred_at))
        if out.destination in MUNICIPAL_DESTINATIONS:  # the simulation always has needs
            received += 1
            day_1 = max(
                oslo_day(notice.ready_at or notice.occurred_at), oslo_day(notice.occurred_at)
            )
            same_day += oslo_day(out.occurred_at) == day_1
    assert everyone["toDischargeDays"] == spread_of(to_discharge)
    assert everyone["toServiceReadyDays"] == spread_of(to_service)
    assert everyone["receivedSameDay"]["received"] == received
    assert everyone["receivedSameDay"]["sameDay"] == same_day
    expected = replay(month.events, CLOCK, load_rates(), load_profile()).statements
    assert everyone["liableDaysPerEpisode"]["total"] == sum(s.liable_days for s in expected)
    assert everyone["liableDaysPerEpisode"]["max"] == max(s.liable_days for s in expected)
    to_answer = [month.first_answer_days(month.of(e, NOTICE)[-1]) for e in episodes]
    assert everyone["toAnswerDays"] == spread_of([d for d in to_answer if d is not None])
    names = {g["group"] for g in report["groups"]}
    assert {"1103", "SOMATIC", "1103 SOMATIC"} <= names
    text = overgang(month.env, "sla", "--month", "2024-03", "--hospital", month.her_id).stdout
    assert re.search(rf"^all\s+{EPISODES}\s", text, re.M), text


# ---------------------------------------------------------------- report in Chromium
def chromium_installed() -> None:
    """Debian's Chromium, installed here if missing and we may; else a clear failure."""
    if find_chromium() is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["sh", "-c", CHROMIUM_INSTALL], capture_output=True, timeout=1200)
    if find_chromium() is None:
        pytest.fail(f"the report test needs headless Chromium: {CHROMIUM_INSTALL}", pytrace=False)


def test_report_plots_render_in_headless_chromium(month: Month) -> None:
    chromium_installed()
    out, shot = month.tmp / "report.html", month.tmp / "report.png"
    scope = ("--month", "2024-03", "--hospital", month.her_id)
    result = overgang(month.env, "report", *scope, "--out", str(out), "--png", str(shot))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(out.resolve()), str(shot.resolve())]
    html = out.read_text()
    assert html.count("<svg") == 4 and "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched at view time
    width, pixels = png_pixels(shot.read_bytes())
    assert sum(p != b"\xff\xff\xff" for p in pixels) > len(pixels) // 50  # not blank
    # Days and NOK per week sit side by side (municipality colours), reception below left,
    # SLA breaches below right: each plot's own colour is drawn on its side of the page.
    plots = ((PALETTE[0], "left"), (PALETTE[0], "right"))
    plots += ((RECEIVED_COLOUR, "left"), (BREACHED_COLOUR, "right"))
    for colour, side in plots:
        wanted = bytes.fromhex(colour.removeprefix("#"))
        left = [i % width < width // 2 for i, p in enumerate(pixels) if p == wanted]
        drawn = left.count(side == "left")
        assert drawn > 300, f"plot colour {colour} ({side}) hardly drawn: {drawn} pixels"


# ---------------------------------------------------------------- board in a pty
def read_until(
    fd: int, pattern: re.Pattern[str], buffer: list[str], timeout: float = 60
) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.5)[0]:
            try:
                buffer.append(os.read(fd, 65536).decode(errors="replace"))
            except OSError:  # the board exited and closed the terminal
                break
            text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", "".join(buffer[-40:]))
            matches = list(pattern.finditer(text))
            if matches:
                return matches[-1]
    raise AssertionError(f"no {pattern.pattern!r} on the board: {''.join(buffer)[-3000:]!r}")


def stage_counts(month: Month) -> Counter[str]:
    clients = Clients(month.settings)
    try:
        pathways = [p for p in clients.pathways() if p.her_id == month.her_id]
        return Counter(pathway_pb2.Stage.Name(p.stage)[6:] for p in pathways)
    finally:
        clients.close()


def test_board_renders_stage_counts_in_a_pty_and_exits_0_on_sigint(month: Month) -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 120, 0, 0))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tooling.cli",
            "board",
            "--interval",
            "1",
            "--hospital",
            month.her_id,
        ],
        env={**os.environ, **month.env, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "60"},
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    buffer: list[str] = []
    try:
        counts = stage_counts(month)  # its own episodes: the broker has others'
        read_until(master, re.compile(rf"RECEIVED\s*│\s*{counts['RECEIVED']}\s*│"), buffer)
        read_until(master, re.compile(r"running clocks: \d+, \d+ days, NOK"), buffer)
        escalated = r"[A-Z_]+(/[A-Z_]+)?\s*│\s*\d+\s*│\s*\d+\s*│\s*[1-9]\d*\s*│"
        read_until(master, re.compile(escalated), buffer)  # a unit row with escalated tasks
        admitted = counts["ADMITTED"]  # a new episode arrives while the board runs:
        new = EpisodeEvent(
            event_id=f"{month.her_id}:BOARD:01",
            episode_id=f"{month.her_id}:BOARD",
            occurred_at=CUTOFF - dt.timedelta(hours=2),
            municipality="1103",
            division=Division.SOMATIC,
            kind=EventKind.ADMITTED,
        )
        clients = Clients(month.settings)
        try:
            clients.submit(Submission(1, new, synthetic_national_id(random.Random(9))))
        finally:
            clients.close()
        read_until(master, re.compile(rf"ADMITTED\s*│\s*{admitted + 1}\s*│"), buffer, timeout=30)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        read_until(master, re.compile("board stopped"), buffer, timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)


def test_a_dispute_shows_beside_the_liable_days_and_never_changes_them(month: Month) -> None:
    scope = ("--month", "2024-03", "--hospital", month.her_id, "--json")
    before = json.loads(overgang(month.env, "statement", *scope).stdout)
    line = next(x for x in before["lines"] if x["liableDays"] >= 2)
    days = [d["date"] for p in line["periods"] for d in p["days"]][:2]
    ask = ("dispute", line["episodeId"], "--days", *days, "--reason", "not notified in time")
    opened = json.loads(overgang(month.env, *ask, "--json").stdout)
    again = json.loads(overgang(month.env, *ask, "--json").stdout)  # a repeat, not a second
    assert (opened["state"], again["disputeId"]) == ("OPEN", opened["disputeId"])
    disputed = json.loads(overgang(month.env, "statement", *scope).stdout)
    resolved = overgang(
        month.env, "resolve-dispute", opened["disputeId"], "--accept", "--note", "agreed", "--json"
    )
    assert json.loads(resolved.stdout)["state"] == "ACCEPTED"
    accepted = json.loads(overgang(month.env, "statement", *scope).stdout)
    rate = int(line["periods"][0]["rateNok"])
    assert [
        (s["liableDays"], s["amountNok"], s["disputedOpenDays"], s["disputedAcceptedNok"])
        for s in (before, disputed, accepted)
    ] == [
        (before["liableDays"], before["amountNok"], 0, 0),
        (before["liableDays"], before["amountNok"], 2, 0),
        (before["liableDays"], before["amountNok"], 0, 2 * rate),
    ]


def test_statement_since_lists_the_corrections_the_clock_announced(month: Month) -> None:
    from clock_probe import announced_events

    announced = {
        e.event_id
        for e in announced_events(month.env["KAFKA_BOOTSTRAP_SERVERS"], f"{month.her_id}:")
        if e.WhichOneof("kind") == "corrected"
    }
    scope = ("--month", "2024-03", "--hospital", month.her_id, "--json")
    listed = json.loads(overgang(month.env, "statement", *scope, "--since", "2024-03-31").stdout)
    later = json.loads(overgang(month.env, "statement", *scope, "--since", "2024-04-01").stdout)
    assert announced  # the simulated month has late and corrected events
    assert ({c["eventId"] for c in listed["corrections"]}, later["corrections"]) == (announced, [])
