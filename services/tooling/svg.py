"""Small, dependency-free SVG charts for the report: stacked bars, vertical or horizontal.
Everything is inline markup (no script, no font or style sheet from the network)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
FONT = 'font-family="sans-serif" font-size="12"'


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    colour: str


def coloured(named: Sequence[tuple[str, Sequence[float]]], palette: Sequence[str]) -> list[Series]:
    return [Series(n, v, palette[i % len(palette)]) for i, (n, v) in enumerate(named)]


def nice_step(top: float, ticks: int = 5) -> float:
    """A step of 1, 2 or 5 x 10^k giving at most `ticks` intervals up to `top`; at least 1
    (the charts count days, patients, tasks and kroner)."""
    if top <= ticks:
        return 1.0
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return float(factor * power)
    return float(10 * power)  # pragma: no cover


def _label(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 10_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"


def _axis_top(series: Sequence[Series], count: int) -> tuple[float, float]:
    totals = [sum(s.values[i] for s in series) for i in range(count)]
    step = nice_step(max(totals, default=0))
    return step * max(1, math.ceil(max(totals, default=0) / step)), step


def _legend(series: Sequence[Series], x0: float, width: float) -> tuple[list[str], float]:
    """The legend from y=36 down, wrapped at `width`; and the y below it."""
    parts, x, y = [], x0, 36.0
    for s in series:
        item = 28 + 7 * len(s.name)
        if x > x0 and x + item > width:
            x, y = x0, y + 16
        parts.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{s.colour}"/>')
        parts.append(f'<text x="{x + 16}" y="{y}" {FONT}>{escape(s.name)}</text>')
        x += item
    return parts, y + 12


def _bar(x: float, y: float, w: float, h: float, s: Series, category: str, i: int) -> list[str]:
    """One segment of a stacked bar, with its value as a tooltip; none for a zero."""
    if w <= 0 or h <= 0:
        return []
    return [
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{s.colour}">'
        f"<title>{escape(s.name)} {escape(category)}: {s.values[i]:g}</title></rect>"
    ]


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>'
        f'<text x="8" y="18" {FONT} font-weight="bold">{escape(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def column_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    width: int = 560,
    height: int = 300,
) -> str:
    """Stacked columns, one per category, with a value axis and a legend."""
    left, right, bottom = 56, 12, 40
    body, top = _legend(series, left, width)
    plot_w, plot_h = width - left - right, height - top - bottom
    y_top, step = _axis_top(series, len(categories))
    for i in range(round(y_top / step) + 1):
        value = i * step
        y = top + plot_h - plot_h * value / y_top
        body.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#dddddd"/>'
        )
        body.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" {FONT} text-anchor="end">{_label(value)}</text>'
        )
    slot = plot_w / max(1, len(categories))
    for i, category in enumerate(categories):
        x = left + i * slot + slot * 0.15
        base = float(top + plot_h)
        for s in series:
            h = plot_h * s.values[i] / y_top
            body += _bar(x, base - h, slot * 0.7, h, s, category, i)
            base -= h
        body.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{top + plot_h + 16}" {FONT} '
            f'text-anchor="middle">{escape(category)}</text>'
        )
    body.append(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" '
        f'y2="{top + plot_h}" stroke="#333333"/>'
    )
    return _svg(width, height, title, body)


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    width: int = 560,
) -> str:
    """Stacked horizontal bars, one per category (long labels, e.g. unit names)."""
    left = min(320, 16 + 8 * max((len(c) for c in categories), default=0))
    right, row = 40, 22
    body, top = _legend(series, 8, width)
    height = int(top + row * max(1, len(categories)) + 28)
    plot_w = width - left - right
    x_top, step = _axis_top(series, len(categories))
    for i in range(round(x_top / step) + 1):
        value = i * step
        x = left + plot_w * value / x_top
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - 24}" stroke="#dddddd"/>'
        )
        body.append(
            f'<text x="{x:.1f}" y="{height - 8}" {FONT} text-anchor="middle">{_label(value)}</text>'
        )
    for i, category in enumerate(categories):
        y = top + i * row
        body.append(
            f'<text x="{left - 6}" y="{y + 15}" {FONT} text-anchor="end">{escape(category)}</text>'
        )
        start = float(left)
        for s in series:
            w = plot_w * s.values[i] / x_top
            body += _bar(start, y + 3, w, row - 6, s, category, i)
            start += w
    return _svg(width, height, title, body)
