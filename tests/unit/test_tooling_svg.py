"""The report's hand-made SVG charts, and the PNG reader its screenshot test uses."""

from __future__ import annotations

import re
import struct
import zlib

import pytest

from tooling import svg
from tooling.screenshot import png_pixels


@pytest.mark.parametrize(("top", "step"), [(0, 1), (4, 1), (7, 2), (23, 5), (180, 50), (1e6, 2e5)])
def test_nice_step_is_1_2_or_5_times_a_power_of_ten(top: float, step: float) -> None:
    assert svg.nice_step(top) == step


def test_columns_are_stacked_per_category_with_a_legend() -> None:
    series = svg.coloured([("1103 <Stavanger>", [2, 0]), ("1108", [1, 3])], svg.PALETTE)
    chart = svg.column_chart("days & NOK", ["W10", "W11"], series)
    assert chart.startswith("<svg") and chart.endswith("</svg>")
    bars = re.findall(
        r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)" fill="(#\w+)"><title>',
        chart,
    )
    assert [c for _, c in bars] == [svg.PALETTE[0], svg.PALETTE[1], svg.PALETTE[1]]  # no 0 bar
    heights = [float(h) for h, _ in bars]
    assert heights[0] == pytest.approx(2 * heights[1], abs=0.2)  # one scale in a chart
    assert "1103 &lt;Stavanger&gt;" in chart and "days &amp; NOK" in chart
    assert not re.search(r"(href|src)=", chart)


def test_bars_leave_room_for_long_unit_names() -> None:
    series = [svg.Series("escalated", [3, 1], "#882255"), svg.Series("overdue", [0, 2], "#DDCC77")]
    chart = svg.bar_chart("breaches", ["HEALTH_OFFICE/HUNDVAAG_STORHAUG", "GP"], series)
    first_bar = re.search(r'<rect x="([\d.]+)" y="[\d.]+" width="[\d.]+" height="16.0" fill', chart)
    assert first_bar is not None and float(first_bar[1]) >= 7 * len(
        "HEALTH_OFFICE/HUNDVAAG_STORHAUG"
    )
    assert chart.count('fill="#882255"') == 3 and chart.count('fill="#DDCC77"') == 2  # + legend


def _png(rows: list[bytes], width: int, bpp: int, filters: list[int]) -> bytes:
    """A PNG whose scanlines use the given filter types (the reader must undo each)."""

    def paeth(a: int, b: int, c: int) -> int:
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        return a if pa <= pb and pa <= pc else b if pb <= pc else c

    raw, prev = b"", bytes(width * bpp)
    for row, kind in zip(rows, filters, strict=True):
        out = bytearray()
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            out.append((x - (0, a, b, (a + b) >> 1, paeth(a, b, c))[kind]) & 0xFF)
        raw += bytes([kind]) + bytes(out)
        prev = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, len(rows), 8, 6 if bpp == 4 else 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("bpp", [3, 4])
def test_png_reader_undoes_every_filter(bpp: int) -> None:
    width = 4
    rows = [bytes((17 * y + 29 * i) % 256 for i in range(width * bpp)) for y in range(5)]
    read_width, pixels = png_pixels(_png(rows, width, bpp, [0, 1, 2, 3, 4]))
    assert read_width == width
    assert pixels == [row[x : x + 3] for row in rows for x in range(0, width * bpp, bpp)]
    with pytest.raises(ValueError, match="not a PNG"):
        png_pixels(b"GIF89a")
