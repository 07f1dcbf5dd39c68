"""The label guard every exported label value goes through, and gauges whose values are
read when Prometheus scrapes (from callables the services register), for
`overgang.metrics`.

A source that fails (database locked, a table changing under the read) is logged and left
out of that scrape; the others are still exported, and the next scrape tries again.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from itertools import count

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from overgang.logging import get_logger, redact_text

log = get_logger(__name__)

INVALID = "invalid"
UNKNOWN = "unknown"
_TOKEN = re.compile(r"[A-Za-z0-9_./-]{1,100}")
_EPISODE_ID = re.compile(r"\d+:")  # `<HER-id>:<local episode number>`
_MUNICIPALITY = re.compile(r"\d{4}")

# One family's samples: (label values after `service`, value).
Samples = Iterable[tuple[Sequence[object], float]]
# A source: one Samples per family of the collector, read at scrape time.
Read = Callable[[], Sequence[Samples]]


def label(value: object) -> str:
    """A label value as it may be exported: a short plain token (letters, digits, `_./-`)
    that is no national id and no episode id; anything else is "invalid"."""
    text = str(value)
    if not _TOKEN.fullmatch(text) or redact_text(text) != text or _EPISODE_ID.match(text):
        return INVALID
    return text


def municipality_label(value: object) -> str:
    """A kommunenummer (four digits), else "unknown"."""
    text = str(value)
    return text if _MUNICIPALITY.fullmatch(text) else UNKNOWN


class ScrapedGauges(Collector):
    """Gauge families (each labelled `service` first) filled from sources at scrape time;
    one source yields the samples of every family (one database round trip)."""

    def __init__(self, families: Sequence[tuple[str, str, Sequence[str]]]) -> None:
        self.families = [(name, doc, ["service", *labels]) for name, doc, labels in families]
        self._lock = threading.Lock()
        self._sources: dict[int, tuple[str, Read]] = {}
        self._ids = count()

    @property
    def names(self) -> list[str]:
        return [name for name, _doc, _labels in self.families]

    def add(self, service: str, read: Read) -> Callable[[], None]:
        """Register a source; returns the call that removes it again."""
        with self._lock:
            key = next(self._ids)
            self._sources[key] = (label(service), read)

        def remove() -> None:
            with self._lock:
                self._sources.pop(key, None)

        return remove

    def _empty(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(name, doc, labels=names) for name, doc, names in self.families]

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return self._empty()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        families = self._empty()
        with self._lock:
            sources = list(self._sources.values())
        for service, read in sources:
            try:
                rows = [
                    [([label(v) for v in values], float(value)) for values, value in samples]
                    for samples in read()
                ]
            except Exception as exc:
                log.warning(
                    "metrics.source_failed",
                    metrics=self.names,
                    service=service,
                    error=f"{type(exc).__name__}: {str(exc)[:200]}",
                )
                continue
            for family, samples in zip(families, rows, strict=False):
                for values, value in samples:
                    family.add_metric([service, *values], value)
        return families
