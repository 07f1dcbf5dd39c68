"""`overgang replay` and `overgang rates` as a user runs them: the statement is evidence
(DESIGN.md's JSON), a bad line stops nothing, exit codes 0 / 1 / 2."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from discharge.domain.clock import compute_statement
from discharge.rules import load_profile, load_rates
from overgang.codec import event_to_json
from overgang.events import EpisodeEvent
from tooling import replay as replay_module
from tooling.cli import main
from tooling.simulation import all_events, simulate_month

from .episode_story import Episode, at

EPISODE_KEYS = {
    "episodeId",
    "status",
    "liableDays",
    "pendingDays",
    "amountNok",
    "voidReason",
    "municipality",
    "error",
    "conflicts",
    "periods",
}
PERIOD_KEYS = {
    "start",
    "end",
    "status",
    "municipality",
    "voidReason",
    "endCause",
    "liableDays",
    "pendingDays",
    "amountNok",
    "notLiableReason",
    "evidence",
}


def ended(episode_id: str = "81234:E1") -> Episode:
    return (
        Episode(episode_id=episode_id)
        .admission_notice(at("2024-12-01"))
        .discharge_ready(at("2024-12-30"))
        .service_ready(at("2025-01-03"))
    )


def write(tmp_path: Path, *lines: str | bytes) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


def story_lines(*stories: Episode) -> list[str]:
    return [event_to_json(e) for s in stories for e in s.events]


@pytest.fixture(autouse=True)
def _no_operator_files(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OVERGANG_RATES_FILE", "OVERGANG_PROFILE_FILE", "OVERGANG_CLOCK_DATE"):
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["replay", *argv, "--as-of", "2025-02-01"])
    out, err = capsys.readouterr()
    return code, out, err


def replay_json(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, Any, str]:
    code, out, err = run(capsys, str(path), "--json")
    return code, json.loads(out), err


def test_a_clean_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, str(write(tmp_path, *story_lines(ended()))))[0] == 0


def test_the_json_follows_the_design_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, data, _ = replay_json(capsys, write(tmp_path, *story_lines(ended())))
    [episode] = data["episodes"]
    assert (set(episode), set(episode["periods"][0])) == (EPISODE_KEYS, PERIOD_KEYS)


def test_the_json_counts_rate_pending_days_apart_from_priced_days(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, data, _ = replay_json(capsys, write(tmp_path, *story_lines(ended())))
    episode = data["episodes"][0]
    assert (episode["liableDays"], episode["pendingDays"], episode["amountNok"]) == (
        4,
        2,
        2 * 5_745,
    )


def test_the_json_period_carries_the_ids_of_the_events_behind_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    story = ended()
    _, data, _ = replay_json(capsys, write(tmp_path, *story_lines(story)))
    evidence = data["episodes"][0]["periods"][0]["evidence"]
    assert [evidence["admissionNotice"], evidence["startedBy"], evidence["endedBy"]] == [
        e.event_id for e in story.events
    ]


def test_rate_pending_days_alone_exit_0_with_a_note_naming_how_to_add_the_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, str(write(tmp_path, *story_lines(ended()))))
    assert (code, "--rates" in err, "OVERGANG_RATES_FILE" in err, "2025" in err) == (
        0,
        True,
        True,
        True,
    )


def test_the_table_shows_pending_days(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, str(write(tmp_path, *story_lines(ended()))))
    header, row = out.splitlines()[:2]
    assert row.split()[header.split().index("pending")] == "2"


def test_an_unknown_enum_number_is_one_bad_line_and_the_others_are_computed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = json.loads(story_lines(ended("81234:E2"))[0]) | {"division": 99}
    path = write(tmp_path, *story_lines(ended()), json.dumps(bad))
    code, data, err = replay_json(capsys, path)
    assert (code, [e["episodeId"] for e in data["episodes"]], err.splitlines()[0]) == (
        1,
        ["81234:E1"],
        "line 4: division: must be one of SOMATIC, MENTAL_HEALTH, SUBSTANCE_USE",
    )


@pytest.mark.parametrize(
    "bad",
    [b"\xff\xfe{}", b"[1, 2]", b"42", b'{"division": true}'],
    ids=["invalid-utf8", "array", "scalar", "bool-in-enum"],
)
def test_a_bad_line_stops_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: bytes
) -> None:
    code, data, err = replay_json(capsys, write(tmp_path, bad, *story_lines(ended())))
    assert (code, len(data["episodes"]), err.startswith("line 1: ")) == (1, 1, True)


def test_a_conflicting_duplicate_is_listed_in_the_episode_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    story = ended()
    late = dataclasses.replace(story.events[-1], occurred_at=at("2025-01-05"))
    code, data, _ = replay_json(capsys, write(tmp_path, *story_lines(story), event_to_json(late)))
    conflicts = data["episodes"][0]["conflicts"]
    assert (code, [(c["kind"], c["eventId"]) for c in conflicts]) == (
        1,
        [("DUPLICATE_EVENT_ID", late.event_id)],
    )


def test_an_episode_that_could_not_be_computed_is_still_listed_with_its_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(episode_id: str, *args: Any, **kwargs: Any) -> Any:
        if episode_id == "81234:E1":
            raise RuntimeError("broken")
        return compute_statement(episode_id, *args, **kwargs)

    monkeypatch.setattr(replay_module, "compute_statement", failing)
    path = write(tmp_path, *story_lines(ended("81234:E1"), ended("81234:E2")))
    code, data, _ = replay_json(capsys, path)
    assert (code, [(e["episodeId"], e["error"]) for e in data["episodes"]]) == (
        1,
        [("81234:E1", "RuntimeError: broken"), ("81234:E2", None)],
    )


def test_a_national_id_in_a_bad_line_is_never_echoed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = json.loads(story_lines(ended())[0]) | {"division": "01019010046"}
    _, out, err = run(capsys, str(write(tmp_path, json.dumps(bad))))
    assert "01019010046" not in out + err


def test_a_bad_rates_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rates = tmp_path / "rates.toml"
    rates.write_text("[rates]\n2024 = -1\n")
    path = write(tmp_path, *story_lines(ended()))
    assert run(capsys, str(path), "--rates", str(rates))[0] == 2


def test_a_bad_profile_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "profile.toml"
    profile.write_text("coverage_starts = {\n")
    path = write(tmp_path, *story_lines(ended()))
    assert run(capsys, str(path), "--profile", str(profile))[0] == 2


def test_an_unreadable_input_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, str(tmp_path / "missing.jsonl"))[0] == 2


def test_the_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    out = capsys.readouterr().out
    assert all(f"\n  {code}  " in out for code in (0, 1, 2))


def test_rates_prints_the_table_in_force_and_the_missing_years(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OVERGANG_CLOCK_DATE", "2026-06-01")
    code = main(["rates"])
    out = capsys.readouterr().out
    assert (code, "2024  NOK 5745" in out, out.splitlines()[-1].split("(")[0]) == (
        0,
        True,
        "missing: 2013, 2025, 2026 ",
    )


def test_rates_reads_the_file_given_with_rates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OVERGANG_CLOCK_DATE", "2025-06-01")
    rates = tmp_path / "rates.toml"
    rates.write_text("[rates]\n2024 = 5745\n2025 = 6000\n")
    main(["rates", "--rates", str(rates)])
    out = capsys.readouterr().out
    assert (str(rates) in out, out.splitlines()[-1]) == (True, "missing: none up to 2025")


def test_the_table_totals_are_the_statements_liable_pending_and_priced_days() -> None:
    """A year with January of the next year rate-pending: each episode's totals, summed in
    one pass for the table, are what its statement says."""
    events = [
        e for month in (11, 12) for e in all_events(simulate_month(2024, month, 200, seed=month))
    ]
    result = replay_module.replay(
        sorted(events, key=EpisodeEvent.sort_key),
        dt.date(2025, 2, 1),
        load_rates(),
        load_profile(),
    )
    statements = [e.statement for e in result.episodes if e.statement is not None]
    assert any(s.pending_days for s in statements) and any(s.amount_nok for s in statements)
    for episode in result.episodes:
        s = episode.statement
        assert s is not None
        assert episode.totals == (s.liable_days, s.pending_days, s.amount_nok)
