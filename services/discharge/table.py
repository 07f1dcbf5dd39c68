"""The clock table as the worker and the gRPC API read and write it: one episode's
`ClockEntry` per key in its stored form (`entry_json`), with the decoded histories and
statements kept beside it, and the write-ahead of what is about to be announced."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping, Sequence
from typing import Any

from discharge.domain.live_clock import ClockEntry
from discharge.domain.statement import (
    PeriodStatus,
    Statement,
)
from discharge.entry_json import (
    encoded_event,
    entry_from_json,
    entry_to_json,
    statement_from_json,
    statement_to_json,
)
from overgang.codec import decode_event
from overgang.events import EpisodeEvent

# Writes one value of a partition (None deletes it) and returns the write in flight:
# awaiting it waits until the write is durable (faust: the changelog record acknowledged).
Changelog = Callable[[int, str, dict[str, Any] | None], Awaitable[Any]]
# An entry with the liability events it is about to announce (serialised).
Unsent = tuple[ClockEntry, Sequence[bytes]]


class _Histories:
    """Decoded and encoded event histories by episode. A history only grows (events are
    appended, never changed), so one of the same length is the same history: a tick
    neither decodes nor encodes the events again (make bench-state)."""

    def __init__(self) -> None:
        self._by_episode: dict[str, tuple[tuple[EpisodeEvent, ...], list[str]]] = {}

    def decoded(self, episode_id: str, encoded: list[str]) -> tuple[EpisodeEvent, ...]:
        known = self._by_episode.get(episode_id)
        if known is not None and len(known[1]) == len(encoded):
            return known[0]
        events = tuple(decode_event(base64.b64decode(e)) for e in encoded)
        self._by_episode[episode_id] = (events, encoded)
        return events

    def encoded(self, episode_id: str, events: tuple[EpisodeEvent, ...]) -> list[str]:
        known = self._by_episode.get(episode_id)
        done = known[1] if known is not None and len(known[1]) <= len(events) else []
        encoded = done + [encoded_event(e) for e in events[len(done) :]]
        self._by_episode[episode_id] = (events, encoded)
        return encoded

    def forget(self, episode_id: str) -> None:
        self._by_episode.pop(episode_id, None)


class _Statements:
    """The announced statement of each episode next to its JSON, the stored value's own
    object: a tick that reads the value it wrote last decodes nothing, and writing the
    same statement twice (write-ahead, then marked sent) encodes it once. Keyed by
    identity, so a value read back from the changelog (a new object) is decoded."""

    def __init__(self) -> None:
        self._by_episode: dict[str, tuple[dict[str, Any], Statement]] = {}

    def decoded(self, episode_id: str, data: dict[str, Any]) -> Statement:
        known = self._by_episode.get(episode_id)
        if known is not None and known[0] is data:
            return known[1]
        statement = statement_from_json(data)
        self._by_episode[episode_id] = (data, statement)
        return statement

    def encoded(self, episode_id: str, statement: Statement) -> dict[str, Any]:
        known = self._by_episode.get(episode_id)
        if known is not None and known[1] is statement:
            return known[0]
        data = statement_to_json(statement)
        self._by_episode[episode_id] = (data, statement)
        return data

    def forget(self, episode_id: str) -> None:
        self._by_episode.pop(episode_id, None)


class ClockTable:
    """Episode id -> ClockEntry over a table of JSON values (a Faust table in the
    service, a dict in tests and benchmarks)."""

    def __init__(self, table: MutableMapping[str, Any], changelog: Changelog | None = None) -> None:
        self.table = table
        self._changelog = changelog
        self._histories = _Histories()
        self._statements = _Statements()

    def __contains__(self, episode_id: str) -> bool:
        return episode_id in self.table

    def get(self, episode_id: str) -> ClockEntry | None:
        value = self.table.get(episode_id)
        return self._entry(value) if value else None

    def _write(self, partition: int, key: str, value: dict[str, Any] | None) -> Awaitable[Any]:
        if self._changelog is not None:
            return self._changelog(partition, key, value)
        if value is None:
            self.table.pop(key, None)
        else:
            self.table[key] = value
        return _DONE

    def _value(self, entry: ClockEntry) -> dict[str, Any]:
        episode = entry.episode_id
        statement = entry.announced
        announced = self._statements.encoded(episode, statement) if statement else None
        return entry_to_json(entry, self._histories.encoded(episode, entry.events), announced)

    async def put_unsent(self, items: Sequence[Unsent]) -> None:
        """Write-ahead: each entry's new state together with the liability events it is
        about to announce, durable before any of them is announced. After a crash the
        table never lags what was announced: the events come again only as duplicates
        (nothing recomputed under another interleaving), and what was about to be
        announced is in `unsent` to be sent again (same bytes, same ids)."""
        writes = []
        for entry, values in items:
            value = self._value(entry)
            if values:
                value["unsent"] = [base64.b64encode(v).decode() for v in values]
            writes.append(self._write(entry.partition, entry.episode_id, value))
        await asyncio.gather(*writes)

    def mark_sent(self, entries: Iterable[ClockEntry]) -> None:
        """The announcements are acknowledged: the entries without them (not awaited; a
        write lost in a crash means only that they are announced once more)."""
        for entry in entries:
            _forget(self._write(entry.partition, entry.episode_id, self._value(entry)))

    def unsent_of(self, episode_id: str) -> list[str]:
        value = self.table.get(episode_id)
        return list(value.get("unsent") or ()) if value else []

    def unsent(self, partitions: set[int] | None = None) -> dict[str, list[str]]:
        """Episode -> its unsent liability events (base64), of these partitions."""
        found: dict[str, list[str]] = {}
        for key, value in list(self.table.items()):
            if (
                value
                and value.get("unsent")
                and (partitions is None or value["partition"] in partitions)
            ):
                found[key] = value["unsent"]
        return found

    def clear_unsent(self, episode_id: str, sent: list[str]) -> None:
        """`sent` was announced: drop it from the entry unless a newer state replaced it."""
        value = self.table.get(episode_id)
        if value and value.get("unsent") == sent:
            rest = {k: v for k, v in value.items() if k != "unsent"}
            _forget(self._write(int(value["partition"]), episode_id, rest))

    def delete(self, episode_id: str) -> None:
        self._histories.forget(episode_id)
        self._statements.forget(episode_id)
        value = self.table.get(episode_id)
        if value:
            _forget(self._write(int(value["partition"]), episode_id, None))

    def _entry(self, value: dict[str, Any]) -> ClockEntry:
        episode = value["episode_id"]
        data = value["announced"]
        announced = self._statements.decoded(episode, data) if data else None
        return entry_from_json(value, self._histories.decoded(episode, value["events"]), announced)

    def entries(self, partition: int | None = None, *, quiet: bool = True) -> Iterator[ClockEntry]:
        """The clocks (of one partition); `quiet=False` leaves out, without decoding
        them, the clocks only a new event can change (what a tick visits)."""
        for _key, value in list(self.table.items()):
            if not value or (partition is not None and value["partition"] != partition):
                continue
            if quiet or value.get("quiet_since") is None:
                yield self._entry(value)

    def running_by_municipality(self) -> dict[str, int]:
        """Clocks with a running period, by its payer, read from the stored JSON without
        decoding any entry (the metrics scrape calls it, on the event loop)."""
        counts: dict[str, int] = {}
        for value in list(self.table.values()):
            for period in ((value or {}).get("announced") or {}).get("periods", ()):
                if period["status"] == PeriodStatus.RUNNING.value:
                    payer = period["municipality"]
                    counts[payer] = counts.get(payer, 0) + 1
        return counts

    def quiet_before(self, partition: int, day: dt.date) -> list[str]:
        """Episodes of the partition quiet since before `day` (to be archived)."""
        cutoff = day.isoformat()
        return [
            key
            for key, value in list(self.table.items())
            if value
            and value["partition"] == partition
            and (since := value.get("quiet_since")) is not None
            and since < cutoff
        ]


async def _done() -> None:
    return None


class _Done:
    """An awaitable that is already complete (a plain mapping's write)."""

    def __await__(self) -> Any:
        return _done().__await__()


_DONE = _Done()


def _forget(write: Awaitable[Any]) -> None:
    """A write whose completion nobody waits for (faust sends it from its buffer)."""
    if isinstance(write, asyncio.Future):
        write.add_done_callback(lambda f: f.cancelled() or f.exception())
