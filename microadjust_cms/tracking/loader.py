"""The event loader: drains the Redis Streams sink into the event table in bulk.

Each loader is a consumer in one group (``EVENT_LOADER_GROUP``); several share the work. A
round, per shard:

1. read up to ``EVENT_LOADER_READ_COUNT`` batches: first this consumer's own unacknowledged
   ones (a restart), then batches a stopped consumer left idle past
   ``EVENT_LOADER_CLAIM_IDLE_SECONDS`` (``XAUTOCLAIM``), then new ones (``XREADGROUP >``);
2. in one transaction: record the batch ids (``LoadedBatch``; ids already there were written
   before, by a loader that stopped between commit and acknowledgement, and are skipped) and
   write the new batches' events (PostgreSQL ``COPY``);
3. after the commit: move batches that cannot be loaded to the dead-letter stream with the
   reason, acknowledge and delete every batch read (``XACK`` + ``XDEL`` in one ``MULTI``).

A batch is written once, acknowledged only after its commit, and never dropped silently:
a batch the database refuses (bad data) goes to the dead letters; a database that cannot be
reached leaves the batches unacknowledged, to be read again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.utils import timezone

from ..conf import get_setting
from .event_store import ROW_FIELDS, copy_rows
from .hooks import events_changed
from .models import LoadedBatch
from .partitions import ensure_partitions
from .sinks.redis_stream import dead_letter_key, redis_connection, stream_key

logger = logging.getLogger("microadjust_cms.loader")
#: Columns of a stream row, as ``redis_stream.encode_rows`` writes them.
_ROW_LENGTH = len(ROW_FIELDS)
#: JSON's escape of a control character (raw ones are not JSON); ``copy_text`` relies on none.
_ESCAPED_CONTROL = re.compile(rb"\\u00[01][0-9a-fA-F]|\\u007[fF]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Epoch milliseconds before the year 10000 (what a timestamp column holds).
_MAX_MS = 253_402_300_800_000
#: How often a running loader makes sure the coming months have their partitions.
PARTITION_CHECK_SECONDS = 3600
#: Dead letters kept per shard (the oldest go first); each names its reason.
DEAD_LETTER_MAX = 100_000


@dataclass
class LoadStats:
    """What one round (or a whole run) did."""

    batches: int = 0
    events: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    claimed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def add(self, other: LoadStats) -> None:
        for item in dataclasses.fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def line(self) -> str:
        rate = self.events / self.seconds if self.seconds else 0.0
        return (f"loaded {self.events} events in {self.batches} batches ({rate:,.0f} events/s), "
                f"{self.duplicates} batches already loaded, {self.dead_letters} dead letters, "
                f"{self.claimed} claimed from stopped loaders")


class BadBatch(ValueError):
    """A stream entry that is not a batch this version can load (the reason is the text)."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_entry(fields: dict) -> tuple[str, list[tuple]]:
    """(batch id, rows in ``event_store.FIELDS`` order, times in epoch milliseconds) from a
    stream entry's fields; ``BadBatch`` when it is not a batch this version can load."""
    try:
        fields = {k.decode() if isinstance(k, bytes) else k: v for k, v in fields.items()}
        batch_id, visitor_id = _text(fields["b"]), _text(fields["v"])
        device = _text(fields.get("d", b""))
        received = int(fields["r"])
        raw = fields["e"]
        if _ESCAPED_CONTROL.search(raw if isinstance(raw, bytes) else raw.encode()):
            raise BadBatch("an event holds a control character (the schema refuses them)")
        encoded = json.loads(raw)
    except BadBatch:
        raise
    except (KeyError, ValueError, TypeError, OverflowError) as exc:
        raise BadBatch(f"unreadable entry: {exc!r}"[:300]) from None
    if not (0 < len(batch_id) <= 32) or not isinstance(encoded, list):
        raise BadBatch("unreadable entry: no batch id or no list of events")
    if _CONTROL.search(visitor_id + device):
        raise BadBatch("the visitor or device holds a control character")
    rows = []
    for values in encoded:
        if type(values) is list and len(values) == _ROW_LENGTH - 1:
            values.append("")  # written before events carried segments: none
        if type(values) is not list or len(values) != _ROW_LENGTH:
            raise BadBatch(f"an event has {len(values) if isinstance(values, list) else 0} "
                           f"fields, not {_ROW_LENGTH}")
        if type(values[1]) is not int or not 0 <= values[1] < _MAX_MS:
            raise BadBatch(f"an event's time is not epoch milliseconds: {values[1]!r}"[:300])
        rows.append((visitor_id, received, device, *values))
    if not 0 <= received < _MAX_MS:
        raise BadBatch(f"the received time is not epoch milliseconds: {received!r}"[:300])
    return batch_id, rows


def default_consumer_name() -> str:
    """Host and process: a restarted loader is a new consumer; what the old one held is
    claimed once idle (``EVENT_LOADER_CLAIM_IDLE_SECONDS``)."""
    return f"{socket.gethostname()}-{os.getpid()}"


class EventLoader:
    """One consumer of the event streams; ``run_once`` is a round, ``run`` loops."""

    def __init__(self, *, consumer: str | None = None, shards: Iterable[int] | None = None,
                 using: str = DEFAULT_DB_ALIAS, read_count: int | None = None,
                 claim_idle_seconds: float | None = None) -> None:
        self.client = redis_connection()
        self.consumer = consumer or default_consumer_name()
        self.shards = list(shards) if shards is not None else list(
            range(get_setting("EVENT_STREAM_SHARDS")))
        self.using = using
        self.group = get_setting("EVENT_LOADER_GROUP")
        self.read_count = read_count or get_setting("EVENT_LOADER_READ_COUNT")
        idle = get_setting("EVENT_LOADER_CLAIM_IDLE_SECONDS")
        self.claim_idle_ms = int(1000 * (idle if claim_idle_seconds is None else claim_idle_seconds))
        self._own_pending_done: set[int] = set()
        self._groups_ready: set[int] = set()

    # -- reading -------------------------------------------------------------------------
    def _ensure_group(self, shard: int) -> None:
        if shard in self._groups_ready:
            return
        try:
            self.client.xgroup_create(stream_key(shard), self.group, id="0", mkstream=True)
        except Exception as exc:  # BUSYGROUP: it exists
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups_ready.add(shard)

    def _read(self, shard: int, stats: LoadStats, block_ms: int | None) -> list:
        key = stream_key(shard)
        self._ensure_group(shard)
        if shard not in self._own_pending_done:  # after a restart under the same name
            entries = self._entries(self.client.xreadgroup(
                self.group, self.consumer, {key: "0"}, count=self.read_count))
            if entries:
                return entries
            self._own_pending_done.add(shard)
        claimed = self.client.xautoclaim(key, self.group, self.consumer, self.claim_idle_ms,
                                         start_id="0-0", count=self.read_count)
        entries = [entry for entry in claimed[1] if entry and entry[1] is not None]
        deleted = [entry[0] for entry in claimed[1] if entry and entry[1] is None]
        if deleted:  # trimmed away while pending: nothing left to load
            self.client.xack(key, self.group, *deleted)
        if entries:
            stats.claimed += len(entries)
            return entries
        return self._entries(self.client.xreadgroup(
            self.group, self.consumer, {key: ">"}, count=self.read_count, block=block_ms))

    @staticmethod
    def _entries(response: Any) -> list:
        if not response:
            return []
        if isinstance(response, dict):  # RESP3
            return [entry for entries in response.values() for entry in entries[0]]
        return [entry for _stream, entries in response for entry in entries if entry[1]]

    # -- writing -------------------------------------------------------------------------
    def _record_batch_ids(self, connection: Any, batch_ids: list[str]) -> set[str]:
        """Insert the ids; returns those that were not there (``ON CONFLICT DO NOTHING``)."""
        now = timezone.now()
        table = connection.ops.quote_name(LoadedBatch._meta.db_table)
        new: set[str] = set()
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":  # one array parameter, not two a batch
                cursor.execute(f"INSERT INTO {table} (batch_id, loaded_at) SELECT unnest(%s::text[]), "
                               "%s ON CONFLICT DO NOTHING RETURNING batch_id", [batch_ids, now])
                return {row[0] for row in cursor.fetchall()}
            loaded_at = connection.ops.adapt_datetimefield_value(now)
            for start in range(0, len(batch_ids), 400):
                chunk = batch_ids[start:start + 400]
                placeholders = ", ".join(["(%s, %s)"] * len(chunk))
                params = [value for batch_id in chunk for value in (batch_id, loaded_at)]
                cursor.execute(f"INSERT INTO {table} (batch_id, loaded_at) VALUES {placeholders} "
                               "ON CONFLICT DO NOTHING RETURNING batch_id", params)
                new.update(row[0] for row in cursor.fetchall())
        return new

    def _write(self, batches: list[tuple[str, str, list[tuple]]], stats: LoadStats) -> list:
        """One transaction for the round; a batch the database refuses goes to the returned
        dead letters, the others are written. ``DatabaseError`` other than refused data (the
        database is down) propagates: nothing is acknowledged."""
        connection = connections[self.using]
        dead = []
        with transaction.atomic(using=self.using):
            new = self._record_batch_ids(connection, [batch_id for _e, batch_id, _r in batches])
            fresh = [batch for batch in batches if batch[1] in new]
            stats.duplicates += len(batches) - len(fresh)
            try:
                with transaction.atomic(using=self.using):
                    copy_rows(connection, [row for _e, _b, rows in fresh for row in rows])
                written = fresh
            except (DatabaseError, ValueError) as exc:
                if not _refused_data(exc):
                    raise
                written = []
                for batch in fresh:  # one at a time, to find the batches refused
                    try:
                        with transaction.atomic(using=self.using):
                            copy_rows(connection, batch[2])
                        written.append(batch)
                    except (DatabaseError, ValueError) as batch_exc:
                        if not _refused_data(batch_exc):
                            raise
                        dead.append((batch[0], f"refused by the database: {batch_exc}"[:500]))
                refused = [batch[1] for batch in fresh if batch not in written]
                if refused:
                    LoadedBatch.objects.using(self.using).filter(batch_id__in=refused).delete()
            if written:  # rows hold occurred_at (epoch ms) at index 4 (``parse_entry``)
                earliest = min(row[4] for batch in written for row in batch[2])
                events_changed.send(EventLoader, earliest=datetime.fromtimestamp(earliest / 1000, tz=UTC))
        stats.batches += len(written)
        stats.events += sum(len(batch[2]) for batch in written)
        return dead

    def _finish(self, shard: int, entries: list, dead: list[tuple[Any, str]]) -> None:
        """Dead letters appended, every entry read acknowledged and deleted: one MULTI (the
        keys share a hash tag)."""
        key, ids = stream_key(shard), [entry[0] for entry in entries]
        fields_by_id = {entry[0]: entry[1] for entry in entries}
        pipe = self.client.pipeline(transaction=True)
        for entry_id, reason in dead:
            fields = {_text(k): v for k, v in (fields_by_id.get(entry_id) or {}).items()}
            pipe.xadd(dead_letter_key(shard), {**fields, "id": entry_id, "reason": reason},
                      maxlen=DEAD_LETTER_MAX, approximate=True)
        pipe.xack(key, self.group, *ids)
        pipe.xdel(key, *ids)
        pipe.execute()

    # -- rounds --------------------------------------------------------------------------
    def load_shard(self, shard: int, *, block_ms: int | None = None) -> LoadStats:
        try:
            return self._load_shard(shard, block_ms)
        except Exception:
            self._own_pending_done.discard(shard)  # what this consumer read is read again
            self._groups_ready.discard(shard)  # a Redis that lost its data lost the group too
            raise

    def _load_shard(self, shard: int, block_ms: int | None) -> LoadStats:
        stats, started = LoadStats(), time.perf_counter()
        entries = self._read(shard, stats, block_ms)
        if not entries:
            stats.seconds = time.perf_counter() - started
            return stats
        batches, dead = [], []
        for entry_id, fields in entries:
            try:
                batch_id, rows = parse_entry(fields)
            except BadBatch as exc:
                dead.append((entry_id, str(exc)))
                continue
            batches.append((entry_id, batch_id, rows))
        seen: set[str] = set()
        unique = []
        for batch in batches:  # the same id twice in one read: the second is a duplicate
            if batch[1] in seen:
                stats.duplicates += 1
                continue
            seen.add(batch[1])
            unique.append(batch)
        if unique:
            dead += self._write(unique, stats)
        self._finish(shard, entries, dead)
        stats.dead_letters += len(dead)
        for entry_id, reason in dead:
            logger.warning("Event batch %s moved to the dead letters: %s", _text(entry_id), reason)
        stats.seconds = time.perf_counter() - started
        return stats

    def run_once(self, *, block_ms: int | None = None) -> LoadStats:
        """One read per shard (``block_ms``: wait that long for new batches on each)."""
        stats = LoadStats()
        for shard in self.shards:
            stats.add(self.load_shard(shard, block_ms=block_ms))
        return stats

    def drain(self, *, max_seconds: float | None = None) -> LoadStats:
        """Rounds until every shard is empty (or ``max_seconds`` passed): the Celery task, the
        command's ``--once`` and the tests."""
        stats, deadline = LoadStats(), (time.monotonic() + max_seconds if max_seconds else None)
        while True:
            round_stats = self.run_once()
            stats.add(round_stats)
            if not (round_stats.batches or round_stats.duplicates or round_stats.dead_letters):
                return stats
            if deadline is not None and time.monotonic() > deadline:
                return stats

    def run(self, *, stop: Callable[[], bool], progress: Callable[[LoadStats], None],
            progress_seconds: float = 10.0, block_ms: int = 1000) -> LoadStats:
        """Loop until ``stop()``: the long-running ``microadjust_load_events``. A database or
        Redis that cannot be reached is waited out (logged once a minute), never fatal."""
        total, window, last = LoadStats(), LoadStats(), time.monotonic()
        failing_since: float | None = None
        partitions_checked = -PARTITION_CHECK_SECONDS
        while not stop():
            try:
                if time.monotonic() - partitions_checked >= PARTITION_CHECK_SECONDS:
                    ensure_partitions(using=self.using)  # the coming months, ahead of the rows
                    partitions_checked = time.monotonic()
                window.add(self.run_once(block_ms=block_ms))
                failing_since = None
            except Exception as exc:  # the database or Redis is down: wait, then retry
                now = time.monotonic()
                if failing_since is None or now - failing_since > 60:
                    logger.error("Event loader round failed, retrying: %s", exc)
                    failing_since = now
                window.errors.append(str(exc)[:200])
                connections[self.using].close()  # reconnect next round
                time.sleep(1.0)
            if time.monotonic() - last >= progress_seconds:
                progress(window)
                total.add(window)
                window, last = LoadStats(), time.monotonic()
        total.add(window)
        return total


def make_loaders(threads: int, consumer: str | None = None, **options: Any) -> list[EventLoader]:
    """``threads`` loaders for one process: consumer ``<consumer>`` alone, else
    ``<consumer>-<n>`` (default name: ``default_consumer_name``)."""
    base = consumer or default_consumer_name()
    if threads <= 1:
        return [EventLoader(consumer=base, **options)]
    return [EventLoader(consumer=f"{base}-{n}", **options) for n in range(threads)]


def in_threads(loaders: list[EventLoader], work: Callable[[EventLoader], LoadStats]) -> list[LoadStats]:
    """``work(loader)`` for each loader side by side, the first in the calling thread (which
    keeps its signal handlers); each other thread closes its database connection when done.
    The first exception raised in any of them is raised here, after all have finished."""
    import threading

    results: list[LoadStats] = []
    errors: list[BaseException] = []

    def run(loader: EventLoader, own_thread: bool) -> None:
        try:
            results.append(work(loader))
        except BaseException as exc:  # reported to the caller below
            errors.append(exc)
        finally:
            if own_thread:
                connections.close_all()

    workers = [threading.Thread(target=run, args=(loader, True)) for loader in loaders[1:]]
    for worker in workers:
        worker.start()
    run(loaders[0], False)
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return results


def drain_in_threads(threads: int, *, consumer: str | None = None, max_seconds: float | None = None,
                     **options: Any) -> LoadStats:
    """``make_loaders`` draining together: while one waits for PostgreSQL to take its COPY,
    another reads and prepares the next rounds (the GIL is free while a thread waits)."""
    results = in_threads(make_loaders(threads, consumer, **options),
                         lambda loader: loader.drain(max_seconds=max_seconds))
    total = LoadStats()
    for stats in results:
        seconds = max(total.seconds, stats.seconds)
        total.add(stats)
        total.seconds = seconds  # side by side: the longest, not the sum
    return total


def _refused_data(exc: Exception) -> bool:
    """The database refused the rows (bad values; or ``copy_text`` did), as opposed to not
    being reachable."""
    from django.db import DataError, IntegrityError

    return isinstance(exc, DataError | IntegrityError | ValueError)


def purge_loaded_batches(now: datetime | None = None, using: str = DEFAULT_DB_ALIAS) -> int:
    """Forget batch ids older than ``EVENT_LOADED_BATCH_RETENTION_DAYS``."""
    cutoff = (now or timezone.now()) - timedelta(days=get_setting("EVENT_LOADED_BATCH_RETENTION_DAYS"))
    deleted, _ = LoadedBatch.objects.using(using).filter(loaded_at__lt=cutoff).delete()
    return deleted
