"""Rule 3, after death nothing opens: once a death is in the history, a later
discharge-ready notice opens no period; it is reported as a conflict, not billed."""

from __future__ import annotations

from discharge.domain.statement import ConflictKind, EndCause

from .episode_story import Episode, at


def died_then_noticed() -> Episode:
    return (
        Episode()
        .admission_notice(at("2024-03-01"))
        .discharge_ready(at("2024-03-04"))
        .died(at("2024-03-06"))
        .discharge_ready(at("2024-03-08"))
    )


def test_a_notice_after_death_opens_no_period() -> None:
    statement = died_then_noticed().statement()
    assert [(p.end_cause, p.liable_days) for p in statement.periods] == [(EndCause.DIED, 2)]


def test_a_notice_after_death_is_reported_as_a_conflict() -> None:
    story = died_then_noticed()
    death, late_notice = story.events[2].event_id, story.events[3].event_id
    [conflict] = story.statement().conflicts
    assert (conflict.kind, conflict.event_id, conflict.related_event_id) == (
        ConflictKind.NOTICE_AFTER_DEATH,
        late_notice,
        death,
    )


def test_a_notice_after_death_without_an_open_period_opens_nothing_either() -> None:
    story = (
        Episode()
        .admission_notice(at("2024-03-01"))
        .died(at("2024-03-02"))
        .discharge_ready(at("2024-03-04"))
    )
    assert (story.statement().periods, len(story.statement().conflicts)) == ((), 1)


def test_a_notice_delivered_late_but_sent_before_the_death_still_counts() -> None:
    story = (
        Episode()
        .admission_notice(at("2024-03-01"))
        .died(at("2024-03-06"))
        .discharge_ready(at("2024-03-04"))  # arrives after the death, happened before
    )
    assert (story.statement().liable_days, story.statement().conflicts) == (2, ())
