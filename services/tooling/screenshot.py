"""The report as a picture: headless Chromium (Debian's `chromium` package) renders the
HTML file to PNG, offline (`overgang report --png`); and a small PNG reader, so a test
can check that the plots were drawn without an imaging library."""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

CHROMIUM_INSTALL = "apt-get update && apt-get install -y chromium"
_NAMES = ("chromium", "chromium-browser", "/usr/bin/chromium")


class NoChromium(RuntimeError):
    pass


def find_chromium() -> str | None:
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(html: Path, png: Path, width: int = 1200, height: int = 1600) -> Path:
    """Renders `html` to `png` with headless Chromium: no network, a throwaway profile."""
    chromium = find_chromium()
    if chromium is None:
        raise NoChromium(f"headless Chromium is needed for a screenshot: {CHROMIUM_INSTALL}")
    with tempfile.TemporaryDirectory(prefix="overgang-chromium-") as profile:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                f"--user-data-dir={profile}",
                f"--screenshot={png.resolve()}",
                f"--window-size={width},{height}",
                html.resolve().as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
    return png


def _unfilter(kind: int, line: bytearray, prev: bytearray, bpp: int) -> bytearray:
    """One scanline back from PNG filter `kind` (none, sub, up, average, Paeth)."""
    if kind == 2:
        return bytearray((x + b) & 0xFF for x, b in zip(line, prev, strict=True))
    if kind:
        for i in range(len(line)):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if kind == 3:
                a = (a + b) >> 1
            elif kind == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                a = a if pa <= pb and pa <= pc else b if pb <= pc else c
            line[i] = (line[i] + a) & 0xFF
    return line


def png_pixels(data: bytes) -> tuple[int, list[bytes]]:
    """Width and the RGB pixels (row by row) of an 8-bit, non-interlaced RGB or RGBA PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, width, bpp = 8, [], 0, 3
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, _, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                raise ValueError("only 8-bit, non-interlaced RGB or RGBA")
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    raw, stride = zlib.decompress(b"".join(idat)), width * bpp
    prev, pixels = bytearray(stride), []
    for y in range(len(raw) // (stride + 1)):
        start = y * (stride + 1)
        line = _unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + stride]), prev, bpp)
        pixels += [bytes(line[x : x + 3]) for x in range(0, stride, bpp)]
        prev = line
    return width, pixels
