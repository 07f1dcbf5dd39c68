"""The rule book at the edge: rule files (TOML) read, merged and validated at start-up;
every error names the file and the key, exactly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from coordination.domain.rules import RuleError
from coordination.rulebook import PACKAGED_RULES, RuleBook

UNITS = "HEALTH_OFFICE, HOME_CARE, SHORT_TERM_BED, NAV, IKART, INNSATSTEAM, GP"
TASKS = (
    "ASSESS_AND_PLAN, ANSWER_HOSPITAL, START_HOME_CARE, ALLOCATE_SHORT_TERM_BED, "
    "ORDER_ASSISTIVE_AIDS, REHABILITATION_INTAKE, FOLLOW_UP_VISIT, REASSESS_DECISION"
)
OCCASIONS = (
    "admission_notice, discharge_ready_notice, discharge_ready_withdrawn, "
    "municipality_answered, service_ready, reception, rehabilitation_start, "
    "follow_up_start, died, closed"
)
NEEDS = (
    "HOME_NURSING, PRACTICAL_ASSISTANCE, SHORT_TERM_BED, NURSING_HOME, HOUSING, "
    "ASSISTIVE_AIDS, REHABILITATION, GP_FOLLOW_UP"
)
RULE_KEYS = "due, enabled, needs_any, priority, task, title, trigger, unit"


def _book(tmp_path: Path, override: str, name: str = "0301.toml") -> RuleBook:
    shutil.copy(PACKAGED_RULES / "default.toml", tmp_path / "default.toml")
    (tmp_path / name).write_text(override)
    return RuleBook(tmp_path)


CASES = [
    ("bogus = 1", "bogus: unknown key (allowed: on, rules, settings, units)"),
    ("[settings]\nx = 1", "settings.x: unknown key (allowed: rehab_period_days)"),
    (
        "[settings]\nrehab_period_days = 0",
        "settings.rehab_period_days: must be an integer 1-365",
    ),
    (
        "[settings]\nrehab_period_days = true",
        "settings.rehab_period_days: must be an integer 1-365",
    ),
    ("[rules]\nanswer-hospital = 3", "rules.answer-hospital: must be a table"),
    (
        '[rules.answer-hospital]\ncolour = "red"',
        f"rules.answer-hospital.colour: unknown key (allowed: {RULE_KEYS})",
    ),
    (
        '[rules.answer-hospital]\ndue = "soonish"',
        "rules.answer-hospital.due: unknown due rule 'soonish'",
    ),
    (
        '[rules.answer-hospital]\nunit = "POLICE"',
        f"rules.answer-hospital.unit: 'POLICE' is not one of {UNITS}",
    ),
    (
        '[rules.answer-hospital]\ntask = "DANCE"',
        f"rules.answer-hospital.task: 'DANCE' is not one of {TASKS}",
    ),
    (
        '[rules.answer-hospital]\ntrigger = "sunrise"',
        f"rules.answer-hospital.trigger: 'sunrise' is not one of {OCCASIONS}",
    ),
    (
        '[rules.answer-hospital]\npriority = "LOW"',
        "rules.answer-hospital.priority: 'LOW' is not one of NORMAL, HIGH, URGENT",
    ),
    (
        '[rules.answer-hospital]\nneeds_any = ["PIZZA"]',
        f"rules.answer-hospital.needs_any: 'PIZZA' is not one of {NEEDS}",
    ),
    (
        '[rules.new-rule]\ntrigger = "died"\ntask = "ASSESS_AND_PLAN"\nunit = "GP"',
        "rules.new-rule.due: is required",
    ),
    (
        '[rules.new-rule]\ntrigger = "discharge_ready_notice"\ntask = "ANSWER_HOSPITAL"\n'
        'unit = "GP"\ndue = "same day"',
        "rules.new-rule: a second ANSWER_HOSPITAL task on discharge_ready_notice "
        "(task ids are <episode>:<kind>:<trigger>, so they would collide)",
    ),
    (
        '[on.sunrise]\ncancel = ["*"]',
        f"on.sunrise: 'sunrise' is not one of {OCCASIONS}",
    ),
    (
        "[on.died]\nfrobnicate = []",
        "on.died.frobnicate: unknown key (allowed: cancel, complete, reason)",
    ),
    ('[on.died]\ncancel = ["DANCE"]', f"on.died.cancel: 'DANCE' is not one of {TASKS}"),
    ('[on.died]\ncomplete = ["DANCE"]', f"on.died.complete: 'DANCE' is not one of {TASKS}"),
    ('[units.POLICE]\noffices = ["A"]', f"units.POLICE: 'POLICE' is not one of {UNITS}"),
    (
        '[units.HEALTH_OFFICE]\nselect = "address"',
        "units.HEALTH_OFFICE.select: only 'patient_pseudonym_hash' is supported",
    ),
    (
        "[units.HEALTH_OFFICE]\ncolour = 1",
        "units.HEALTH_OFFICE.colour: unknown key (allowed: offices, select)",
    ),
    (
        '[units.HEALTH_OFFICE]\noffices = ["a b"]',
        "units.HEALTH_OFFICE.offices: 'a b' is not [A-Z0-9_]",
    ),
    (
        '[units.HEALTH_OFFICE]\noffices = ["A", "A"]',
        "units.HEALTH_OFFICE.offices: duplicate office",
    ),
    ("[units]\nHEALTH_OFFICE = 3", "units.HEALTH_OFFICE: must be a table"),
]


@pytest.mark.parametrize(("override", "message"), CASES, ids=[m.split(":")[0] for _, m in CASES])
def test_a_broken_override_is_rejected_naming_the_file_and_the_key(
    tmp_path: Path, override: str, message: str
) -> None:
    with pytest.raises(RuleError) as err:
        _book(tmp_path, override)
    assert str(err.value) == f"0301.toml: {message}"


def test_an_override_file_must_be_named_after_a_municipality(tmp_path: Path) -> None:
    with pytest.raises(RuleError) as err:
        _book(tmp_path, "", name="stavanger.toml")
    assert str(err.value) == "stavanger.toml: override files are named <kommunenummer>.toml"


def test_a_rule_file_that_is_not_toml_is_rejected_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match=r"^0301\.toml: not valid TOML: "):
        _book(tmp_path, "[rules")


def test_an_override_merges_over_the_default_rules(tmp_path: Path) -> None:
    book = _book(tmp_path, "[settings]\nrehab_period_days = 42\n")
    assert (book.municipalities, book.for_municipality("0301").rehab_period_days) == (
        ["0301"],
        42,
    )
    assert book.for_municipality("4601").rehab_period_days == 28


def test_the_packaged_rule_book_loads() -> None:
    assert RuleBook().municipalities == ["1103"]
