"""`overgang report`: one self-contained HTML page for a month (inline SVG and CSS, no
script, nothing fetched at view time): liable days and NOK per municipality per week,
days from ready to reception, SLA breaches per unit, and the SLA figures as a table."""

from __future__ import annotations

import collections
import datetime as dt
from html import escape
from pathlib import Path
from typing import Any

from pathway.municipalities import load_municipalities
from tooling import svg
from tooling.month import MonthData
from tooling.sla import EpisodeSla, episodes, groups
from tooling.statement import nok, totals
from tooling.tasks import per_unit

RECEIVED_COLOUR = "#117733"
BREACHED_COLOUR = "#882255"
OVERDUE_COLOUR = "#DDCC77"
MAX_WAIT = 10  # days to reception: 0..10, then "11+"
STYLE = """
body { font-family: sans-serif; margin: 16px; color: #222; max-width: 1180px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 20px 0 6px; }
.grid { display: grid; grid-template-columns: 570px 570px; gap: 12px; }
.figures span { display: inline-block; margin-right: 22px; }
table { border-collapse: collapse; font-size: 12px; margin-bottom: 12px; }
td, th { border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: right; }
td:first-child, th:first-child { text-align: left; }
p.note { font-size: 12px; color: #555; max-width: 1150px; }
"""


def week_label(year: int, week: int, first: dt.date, end: dt.date) -> str:
    monday = dt.date.fromisocalendar(year, week, 1)
    start, stop = max(monday, first), min(monday + dt.timedelta(days=6), end - dt.timedelta(1))
    return f"W{week} {start.day}-{stop.day}.{stop.month}"


def per_week(data: MonthData) -> tuple[list[str], dict[str, list[int]], dict[str, list[int]]]:
    """Week labels, and liable days and NOK per payer municipality per week."""
    first, end = data.scope.days
    weeks = sorted({(d.isocalendar()[0], d.isocalendar()[1]) for d in _dates(first, end)})
    index = {w: i for i, w in enumerate(weeks)}
    days: dict[str, list[int]] = collections.defaultdict(lambda: [0] * len(weeks))
    amounts: dict[str, list[int]] = collections.defaultdict(lambda: [0] * len(weeks))
    for line in data.lines():
        for day in line.days:
            iso = dt.date.fromisoformat(day.date).isocalendar()
            days[line.municipality][index[(iso[0], iso[1])]] += 1
            amounts[line.municipality][index[(iso[0], iso[1])]] += day.amount_nok
    labels = [week_label(y, w, first, end) for y, w in weeks]
    return labels, dict(sorted(days.items())), dict(sorted(amounts.items()))


def _dates(first: dt.date, end: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((end - first).days)]


def _median(spread: dict[str, Any]) -> Any:
    """A median, 0 included ("-": none, no answer yet)."""
    return "-" if spread["median"] is None else spread["median"]


def waits(items: list[EpisodeSla]) -> list[int]:
    """Received patients per whole days from the ready day to reception: 0..MAX_WAIT, more."""
    counts = [0] * (MAX_WAIT + 2)
    for e in items:
        if e.received and e.discharged_at is not None:
            wait = (e.discharged_at.date() - e.ready_day).days
            counts[min(max(wait, 0), MAX_WAIT + 1)] += 1
    return counts


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _named(code: str, names: dict[str, str]) -> str:
    return f"{code} {names.get(code, '')}".strip()


def render(data: MonthData) -> str:
    names = load_municipalities()
    weeks, days, amounts = per_week(data)
    items = episodes(data)
    units = per_unit(data.tasks, data.now)
    t = totals(data)
    all_figures = groups(items)[0]
    same = all_figures["receivedSameDay"]
    share = f"{100 * same['share']:.0f} %" if same["share"] is not None else "-"
    day_series = svg.coloured([(_named(m, names), v) for m, v in days.items()], svg.PALETTE)
    nok_series = svg.coloured([(_named(m, names), v) for m, v in amounts.items()], svg.PALETTE)
    wait_labels = [str(n) for n in range(MAX_WAIT + 1)] + [f"{MAX_WAIT + 1}+"]
    charts = [
        svg.column_chart("Liable days per municipality per week", weeks, day_series),
        svg.column_chart("NOK per municipality per week", weeks, nok_series),
        svg.column_chart(
            "Days from ready to reception (patients received)",
            wait_labels,
            [svg.Series("patients", waits(items), RECEIVED_COLOUR)],
        ),
        svg.bar_chart(
            "SLA breaches per unit (tasks due in the month)",
            list(units),
            [
                svg.Series(
                    "escalated (SLA breached)",
                    [u.escalated for u in units.values()],
                    BREACHED_COLOUR,
                ),
                svg.Series(
                    "overdue, not yet escalated",
                    [max(0, u.overdue - u.escalated) for u in units.values()],
                    OVERDUE_COLOUR,
                ),
            ],
        ),
    ]
    scope = data.scope
    where = _named(scope.municipality, names) if scope.municipality else "every municipality"
    if scope.her_id:
        where += f", hospital {scope.her_id}"
    week_rows = [[_named(m, names), *v, sum(v), nok(sum(amounts[m]))] for m, v in days.items()]
    sla_rows = [
        [
            g["group"],
            g["patients"],
            _median(g["toAnswerDays"]),
            g["toServiceReadyDays"]["median"] or "-",
            g["toDischargeDays"]["median"] or "-",
            g["liableDaysPerEpisode"]["total"],
            nok(g["amountNok"]),
            f"{g['receivedSameDay']['sameDay']}/{g['receivedSameDay']['received']}",
        ]
        for g in groups(items)
    ]
    unit_rows = [
        [u, c.tasks, c.active, c.overdue, c.escalated, c.done, c.cancelled]
        for u, c in units.items()
    ]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Overgang report {escape(scope.month)}</title><style>{STYLE}</style></head><body>
<h1>Overgang: {escape(scope.month)}, {escape(where)}</h1>
<p class="figures"><span>statements as of {escape(data.as_of or "-")}</span>
<span>{t["episodes"]} episodes with liable days</span><span>{t["liableDays"]} liable days
({t["pendingDays"]} rate-pending)</span><span>NOK {nok(t["amountNok"])}</span>
<span>{len(items)} discharge-ready notices</span>
<span>received on the ready day: {same["sameDay"]}/{same["received"]} ({share})</span>
<span>SLA breaches: {sum(u.escalated for u in units.values())}</span></p>
<div class="grid">{"".join(f"<div>{c}</div>" for c in charts)}</div>
<h2>Liable days per municipality per week</h2>
{_table(["municipality", *weeks, "days", "NOK"], week_rows)}
<h2>SLA figures (episodes with a discharge-ready notice in the month)</h2>
{
        _table(
            [
                "group",
                "patients",
                "to answer (median days)",
                "to service ready (median days)",
                "to discharge (median days)",
                "liable days",
                "NOK",
                "received same day",
            ],
            sla_rows,
        )
    }
<h2>Tasks per unit (due in the month)</h2>
{_table(["unit", "tasks", "open", "overdue", "escalated", "done", "cancelled"], unit_rows)}
<p class="note">Liable days and NOK come from LiabilityService.GetMonthlyStatement (the payer
is the municipality on the notice); weeks are ISO weeks cut to the month. Days to reception
count whole Oslo days from the liability period's first day to the discharge into municipal
care. A task is breached when the coordination service escalated it to the unit's lead
(overdue at the services' clock). The time to the municipality's answer is not shown: no
RPC gives the answer's time yet.</p>
</body></html>
"""


def write_report(data: MonthData, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data), encoding="utf-8")
    return path
