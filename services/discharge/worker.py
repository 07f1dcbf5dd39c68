"""The clock's stream handlers: an episode event or a day tick in, liability events out.

Kafka-free and clock-injected: the Faust wiring (`streams.py`) hands each consumed record
to `ClockWorker.handle`, and the worker reads and writes the clock table through
`ClockTable`. Write-ahead: the table holds a clock's new state and the liability events
it is about to announce, durably, before they are sent; once they are acknowledged it
drops them. After a crash the table never lags what consumers saw, and what may not have
been sent is sent again with the same ids (`flush_unsent`).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from discharge.convert import liability_event
from discharge.corrections_store import CorrectionLog
from discharge.domain.liability_diff import ChangeKind
from discharge.domain.live_clock import (
    ClockEntry,
    Outcome,
    Rules,
    apply_event,
    apply_rates,
    apply_tick,
    catch_up,
)
from discharge.domain.rates import RateTable
from discharge.record_check import checked_event
from discharge.store import ClockArchive
from discharge.table import ClockTable
from overgang.codec import InvalidEvent
from overgang.events import OSLO
from overgang.kafka import topics
from overgang.kafka.records import (
    ConsumedRecord,
    DeadLetterSink,
    processing_failed,
    send_dead_letter,
)
from overgang.logging import get_logger
from overgang.metrics import process_metrics
from overgang.plausibility import Windows, load_windows
from overgang.retry import until_done

log = get_logger(__name__)

SERVICE = "discharge"

# Sends one episode's liability events (serialised) and returns once all are acknowledged.
Announce = Callable[[str, Sequence[bytes]], Awaitable[None]]


@dataclass
class Batch:
    """Records applied together: each episode's outcome so far (recorded at the end, or
    before a tick), and what the archive holds of the episodes already looked up."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    looked_up: set[str] = field(default_factory=set)
    archived: dict[str, ClockEntry] = field(default_factory=dict)  # found, not yet restored
    restored: list[str] = field(default_factory=list)  # by an accepted event of the batch


class ClockWorker:
    def __init__(
        self,
        store: ClockTable,
        rules: Rules,
        now: Callable[[], dt.datetime],
        announce: Announce,
        dead_letter: DeadLetterSink,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        archive: ClockArchive | None = None,
        retention_days: int = 30,
        windows: Windows | None = None,
        corrections: CorrectionLog | None = None,
    ) -> None:
        self.corrections = corrections
        self.windows = windows or load_windows()
        self.store = store
        self.archive = archive
        self.retention = dt.timedelta(days=retention_days)
        self.rules = rules
        self.now = now
        self._announce = announce
        self._dead_letter = dead_letter
        self._sleep = sleep  # the retry backoff's (tests pass a fast one)
        self._unsent_seen: dict[str, list[str]] = {}  # at the last sweep
        self._lettered: set[int] = set()  # records dead-lettered in this call (`id`)

    def today(self) -> dt.date:
        return self.now().astimezone(OSLO).date()

    async def handle(self, record: ConsumedRecord) -> None:
        """One record of the clock's source topics. Returns only when the record is part
        of the clock or in the dead-letter topic: an infrastructure error (Kafka,
        timeout) is retried with backoff, so the stream, and with it the partition's
        offsets, waits; a record that is bad in itself is dead-lettered."""
        self._lettered = set()
        await self._handle_alone(record)

    async def _handle_alone(self, record: ConsumedRecord) -> None:
        try:
            # Safe to repeat: a repeat finds the event in the table's history and sends
            # again only what the table holds as unsent (same ids).
            await until_done(
                lambda: self._handle_batch_once([record]), "clock.record", log, sleep=self._sleep
            )
        except Exception as exc:  # a bug must not stop every other episode's clock
            log.exception("clock.failed", topic=record.topic)
            await self.dead_letter(record, processing_failed(exc))

    async def dead_letter(self, record: ConsumedRecord, reason: str) -> None:
        # Once per record of the call, though a retried or failed batch goes over the
        # record again (the ids stay unique while the call holds its records).
        if id(record) in self._lettered:
            return
        await until_done(
            lambda: send_dead_letter(self._dead_letter, record, reason, SERVICE, log),
            "clock.dead_letter",
            log,
            sleep=self._sleep,
        )
        self._lettered.add(id(record))

    async def on_episode_event(self, record: ConsumedRecord, batch: Batch) -> None:
        """Applies the event to the episode's clock as the batch has it so far."""
        try:
            event = checked_event(record, self.now(), self.windows)
        except InvalidEvent as exc:
            await self.dead_letter(record, str(exc))
            return
        episode = event.episode_id
        if not (episode in batch.looked_up or episode in batch.outcomes or episode in self.store):
            await self._look_up(batch, {episode})  # archived by a tick in the batch
        self._restore(batch, episode, record.partition)
        batched = batch.outcomes.get(episode)
        entry = (
            (batched.entry if batched is not None else None)
            or self.store.get(episode)
            or ClockEntry(episode, record.partition, self.today())
        )
        entry = catch_up(entry, self.today())
        if entry.partition != record.partition:
            await self.dead_letter(
                record,
                f"episode's events arrive on partitions {entry.partition} and "
                f"{record.partition}: producers must key by episode id (default partitioner)",
            )
            return
        if unsent := self.store.unsent_of(episode):  # a crash or failed send left it
            await self._send({episode: unsent})
        outcome = apply_event(entry, event, self.rules)
        if outcome.entry is entry:
            return  # a duplicate
        if batched is not None:  # an earlier event of the batch: both announcements
            outcome = Outcome(
                outcome.entry,
                [*batched.changes, *outcome.changes],
                [*batched.answered, *outcome.answered],
            )
        batch.outcomes[episode] = outcome

    async def handle_batch(self, records: Sequence[ConsumedRecord]) -> None:
        """The records of one fetch: applied one by one in order, recorded together (one
        durable table write and one wait for the announcements' acknowledgements per
        batch, not per event). Returns, like `handle`, only when every record is part of
        the clock or dead-lettered; on a bug the batch goes again one record at a time, so
        only the record at fault is dead-lettered."""
        self._lettered = set()
        try:
            await until_done(
                lambda: self._handle_batch_once(records), "clock.batch", log, sleep=self._sleep
            )
        except Exception:
            log.exception("clock.batch_failed", records=len(records))
            for record in records:
                if id(record) not in self._lettered:
                    await self._handle_alone(record)

    async def _handle_batch_once(self, records: Sequence[ConsumedRecord]) -> None:
        # Safe to repeat like one record: what was recorded comes again as duplicates.
        batch = Batch()
        await self._look_up(batch, self._not_in_table(records))  # one query for the batch
        for record in records:
            if record.topic == topics.CLOCK_TICKS:
                await self._record_batch(batch)  # a tick sees what came before it
                batch = Batch()  # (and may archive clocks looked up before it)
                await self.on_tick(record)
            else:
                await self.on_episode_event(record, batch)
        await self._record_batch(batch)

    def _not_in_table(self, records: Sequence[ConsumedRecord]) -> set[str]:
        """The episodes (by record key) of the events whose clock the table lacks."""
        keys = {r.key for r in records if r.topic != topics.CLOCK_TICKS and r.key}
        return {e for e in (k.decode(errors="replace") for k in keys) if e not in self.store}

    async def _look_up(self, batch: Batch, episodes: set[str]) -> None:
        """Which of these episodes' clocks the archive holds (one query)."""
        batch.looked_up.update(episodes)
        if self.archive is not None and episodes:
            batch.archived.update(await asyncio.to_thread(self.archive.find_many, [*episodes]))

    def _restore(self, batch: Batch, episode: str, partition: int) -> None:
        """An archived clock an accepted event brings back (its corrections follow): in
        the batch's outcomes from now, so it goes back to the table even if the event is
        a duplicate (the archive no longer counts it once the batch is recorded)."""
        if (entry := batch.archived.pop(episode, None)) is not None:
            log.info("clock.restored_from_archive", episode=episode)
            batch.outcomes[episode] = Outcome(replace(entry, partition=partition), [], [])
            batch.restored.append(episode)

    async def _record_batch(self, batch: Batch) -> None:
        if batch.restored and self.archive is not None:
            # Before the table: a crash in between finds the clock in the archive again.
            await asyncio.to_thread(self.archive.mark_restored, batch.restored)
        await self._record(list(batch.outcomes.values()))

    async def on_tick(self, record: ConsumedRecord) -> None:
        try:
            day = dt.date.fromisoformat(json.loads(record.value or b"")["date"])
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            await self.dead_letter(record, f"not a day tick: {exc}")
            return
        if day > self.today() + dt.timedelta(days=1):
            # A forged or misconfigured tick must not bill days that have not happened.
            await self.dead_letter(record, "tick dated after tomorrow (Europe/Oslo)")
            return
        await self.flush_unsent({record.partition}, at_once=True)
        outcomes = []
        for entry in self.store.entries(record.partition, quiet=False):
            repriced = apply_rates(entry, self.rules)
            outcome = apply_tick(repriced.entry, day, self.rules)
            if outcome.entry != entry:  # the re-pricing and the day as one write
                changes = [*repriced.changes, *outcome.changes]
                answered = [*repriced.answered, *outcome.answered]
                outcomes.append(Outcome(outcome.entry, changes, answered))
        await self._record(outcomes)
        await self._archive_quiet(record.partition, day)

    async def _archive_quiet(self, partition: int, day: dt.date) -> None:
        if self.archive is None:
            return
        quiet = self.store.quiet_before(partition, day - self.retention)
        entries = [e for e in map(self.store.get, quiet) if e is not None]
        if entries:
            await asyncio.to_thread(self.archive.put_many, entries)  # before the table forgets
            for entry in entries:
                self.store.delete(entry.episode_id)

    async def _record(self, outcomes: Sequence[Outcome]) -> None:
        """New clock states and their liability events: durable in the table first, then
        announced (every episode's at once), then marked sent."""
        if not outcomes:
            return
        emitted_at = self.now()
        corrected = [
            (c, o.entry.as_of)
            for o in outcomes
            for c in o.changes
            if c.kind is ChangeKind.CORRECTED
        ]
        if corrected and self.corrections is not None:
            # Before the table: a crash after this finds the event new and writes it again
            # under the same id; after the table it would find a duplicate and skip it.
            await asyncio.to_thread(self.corrections.put_many, corrected, emitted_at)
        items = [
            (
                o.entry,
                [
                    liability_event(c, o.entry.as_of, emitted_at).SerializeToString()
                    for c in o.changes
                ],
            )
            for o in outcomes
        ]
        await self.store.put_unsent(items)
        announcing = [(entry, values) for entry, values in items if values]
        await asyncio.gather(*(self._announce(e.episode_id, v) for e, v in announcing))
        self.store.mark_sent(entry for entry, _ in announcing)
        metrics = process_metrics()
        for outcome in outcomes:
            for change in outcome.changes:
                metrics.liability_announced(SERVICE, change)
            for answer in outcome.answered:
                metrics.notice_answered(
                    SERVICE, answer.municipality, answer.division.value, answer.seconds
                )
            if outcome.entry.error:
                log.error(
                    "clock.not_announced",
                    episode=outcome.entry.episode_id,
                    error=outcome.entry.error,
                )

    async def flush_unsent(self, partitions: set[int], *, at_once: bool = False) -> None:
        """Send again what the table holds as unsent in these (owned) partitions: after a
        crash or a failed send. A periodic sweep passes `at_once=False` and leaves out what
        appeared since the last sweep (the stream is probably announcing it right now)."""
        unsent = self.store.unsent(partitions)
        if not at_once:
            seen, self._unsent_seen = self._unsent_seen, unsent
            unsent = {ep: values for ep, values in unsent.items() if seen.get(ep) == values}
        await self._send(unsent)

    async def _send(self, unsent: dict[str, list[str]]) -> None:
        if not unsent:
            return
        log.info("clock.sending_unsent", episodes=len(unsent))
        await asyncio.gather(
            *(
                self._announce(episode, [base64.b64decode(v) for v in values])
                for episode, values in unsent.items()
            )
        )
        for episode, values in unsent.items():
            self.store.clear_unsent(episode, values)

    def use_rates(self, rates: RateTable | None) -> bool:
        """Switch to a new rate table (None: unchanged); True if it differs. The next
        tick of each partition re-prices its clocks and announces the difference."""
        if rates is None or rates.fingerprint == self.rules.rates.fingerprint:
            return False
        log.info("rates.changed", source=rates.source, years=list(rates.years()))
        self.rules = replace(self.rules, rates=rates)
        return True

    def tick_body(self) -> bytes:
        return json.dumps({"date": self.today().isoformat()}).encode()
