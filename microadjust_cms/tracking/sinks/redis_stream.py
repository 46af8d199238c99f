"""The Redis Streams sink: collect appends a batch to a stream; a loader writes it to the
database in bulk (``tracking.loader``).

One round trip a batch: a Lua script counts the sender against ``COLLECT_RATE`` (a fixed window,
as django-ratelimit's, kept here so the limit costs no round trip of its own), checks the
backlog bound, applies the profile update
(when the profile store is the Redis store on the same connection, so real-time signals and
triggers see the batch at once) and appends the batch (``XADD``). The script runs whole or, for
a full stream, not at all. On Redis Cluster a script may only touch keys of one slot, and the
profile keys are tagged with the visitor: there the append and the profile update are two
round trips (the profile update after the append, as with the database sink).

Streams are sharded (``EVENT_STREAM_SHARDS``, a visitor's batches always in the same shard):
``<prefix>:events:{<prefix>-ev-<n>}`` and its dead letters ``<prefix>:dead:{<prefix>-ev-<n>}``
share a hash tag, so a loader's dead-letter append and acknowledgement go to one Cluster slot.

Redis down: the batch goes to the database directly (``EVENT_STREAM_FALLBACK``), its batch id
recorded with it, so a batch Redis did append after all (the answer lost on the way) is skipped
by the loader; only with both down does collect answer 503.

Durability is Redis': with ``appendonly yes`` and ``appendfsync always`` an acknowledged batch
survives a Redis crash; with ``appendfsync everysec`` (Redis' default once AOF is on) up to
about a second of acknowledged batches can be lost; without AOF, everything since the last
snapshot. ``docs/event-pipeline.md`` says more.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import zlib
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from django.utils import timezone

from ...conf import get_setting
from ...faults import record
from ...redis_scripts import Script
from ...visitor.stores import get_profile_store
from ...visitor.stores.redis import RECORD_SCRIPT, RedisProfileStore, record_args, record_keys
from .base import Batch, EventSink, RateLimited, SinkFull, SinkUnavailable
from .database import write_with_batch_id

logger = logging.getLogger("microadjust_cms.collect")

#: KEYS: stream, rate counter [, profile, pages, blocks, counter hashes]. ARGV: max batches, rate limit (0: none),
#: rate period (seconds), batch id, visitor, device, received (epoch ms), events JSON, then
#: ``RECORD_SCRIPT``'s ARGV as one JSON list of strings when the profile keys are given (one
#: argument for redis-py to encode instead of thirty). Returns 2 when the sender is over
#: the rate limit, 0 when the stream is full (nothing else done either way), else 1.
APPEND_SCRIPT = (
    "local function record(KEYS, ARGV)\n" + RECORD_SCRIPT + "\nend\n" + """
local limit = tonumber(ARGV[2])
if limit > 0 then
  local count = redis.call('INCR', KEYS[2])
  if count == 1 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
  if count > limit then return 2 end
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
if #KEYS > 2 then record({unpack(KEYS, 3)}, cjson.decode(ARGV[9])) end
redis.call('XADD', KEYS[1], '*', 'b', ARGV[4], 'v', ARGV[5], 'd', ARGV[6], 'r', ARGV[7],
           'e', ARGV[8])
return 1
""")
#: ``COLLECT_RATE``'s syntax, as django-ratelimit reads it ("120/m", "10/5s").
_RATE_RE = re.compile(r"^(\d+)/(\d*)([smhd])$")
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@lru_cache(maxsize=16)
def parse_rate(rate: str) -> tuple[int, int]:
    """(count, period seconds) of a ``COLLECT_RATE`` value; ``ValueError`` when unreadable."""
    match = _RATE_RE.match(rate.strip())
    if not match:
        raise ValueError(f"not a rate: {rate!r} (say \"120/m\")")
    count, multiple, unit = match.groups()
    return int(count), _PERIODS[unit] * int(multiple or 1)


def rate_counter_key(rate_key: str, shard: int, period: int, now: float) -> str:
    """The fixed-window counter of ``rate_key``: hashed (an address is never a key in the
    clear), in the stream's hash slot, named for its window so it starts at 0 each window."""
    prefix = get_setting("KEY_PREFIX")
    digest = hashlib.sha256(rate_key.encode()).hexdigest()[:20]
    return f"{prefix}:rate:{{{prefix}-ev-{shard}}}:{digest}:{int(now // period)}"


def shard_of(visitor_id: str, shards: int) -> int:
    """A visitor's shard: stable across processes (not ``hash()``, which is salted)."""
    return zlib.crc32(visitor_id.encode()) % shards if shards > 1 else 0


def stream_key(shard: int) -> str:
    prefix = get_setting("KEY_PREFIX")
    return f"{prefix}:events:{{{prefix}-ev-{shard}}}"


def dead_letter_key(shard: int) -> str:
    prefix = get_setting("KEY_PREFIX")
    return f"{prefix}:dead:{{{prefix}-ev-{shard}}}"


def epoch_ms(value: datetime) -> int:
    return round(value.timestamp() * 1000)


def encode_rows(rows: list[dict[str, Any]]) -> bytes:
    """The batch's rows as a JSON list of lists in ``ROW_FIELDS`` order, ``occurred_at`` in
    epoch milliseconds: about half the bytes of a list of objects. (Spelled out, not a loop
    over ``ROW_FIELDS``: this runs for every batch; ``test_encoded_rows_follow_row_fields``
    keeps the two in step.)"""
    return orjson.dumps([[row["type"], round(row["occurred_at"].timestamp() * 1000), row["page_id"],
                    row["path"], row["previous_path"], row["block_id"], row["variant"],
                    row["value"], row["name"], row["content_type"], row["tags"],
                    row["position"], row["segments"]] for row in rows])


def redis_connection() -> Any:
    from django_redis import get_redis_connection

    return get_redis_connection(get_setting("REDIS_ALIAS"))


def is_cluster(client: Any) -> bool:
    from redis.cluster import RedisCluster

    return isinstance(client, RedisCluster)


class RedisStreamSink(EventSink):
    name = "redis-stream"
    enforces_rate_limit = True

    def __init__(self) -> None:
        self.client = redis_connection()
        self.script = Script(self.client, APPEND_SCRIPT)  # on the thread's own connection

    def _profile_keys(self, batch: Batch) -> list[str] | None:
        """The profile keys when the update can go in the same script (see the module doc)."""
        if batch.update is None or is_cluster(self.client):
            return None
        store = get_profile_store()
        if not isinstance(store, RedisProfileStore):
            return None
        if store.client.connection_pool is not self.client.connection_pool:
            return None
        return record_keys(store.keys(batch.visitor_id), batch.update)

    def write(self, batch: Batch) -> bool:
        if not batch.rows:
            return False
        shard = shard_of(batch.visitor_id, get_setting("EVENT_STREAM_SHARDS"))
        received = batch.received_at or timezone.now()
        now = time.time()
        limit, period = parse_rate(get_setting("COLLECT_RATE")) if batch.rate_key else (0, 1)
        keys = [stream_key(shard), rate_counter_key(batch.rate_key or "", shard, period, now)]
        args = [get_setting("EVENT_STREAM_MAX_BATCHES"), limit, period, batch.batch_id,
                batch.visitor_id, batch.device, epoch_ms(received), encode_rows(batch.rows)]
        profile_keys = self._profile_keys(batch)
        if profile_keys:
            keys += profile_keys
            args.append(orjson.dumps([str(arg) for arg in record_args(batch.update, now)]))
        try:
            appended = self.script(keys=keys, args=args)
        except Exception as exc:  # refused, timed out, out of memory, cluster moved...
            if not get_setting("EVENT_STREAM_FALLBACK"):
                raise SinkUnavailable(str(exc)) from exc
            record("event_stream", "Event stream unavailable (%s); batches go to the database "
                   "directly", exc, log=logger)
            write_with_batch_id(batch)  # SinkUnavailable when the database is down too
            return False
        if appended == 2:
            raise RateLimited(batch.rate_key)
        if not appended:
            raise SinkFull("the event stream is at its bound (is the loader running?)",
                           retry_after=get_setting("EVENT_STREAM_RETRY_AFTER"))
        return bool(profile_keys)

    def backlog(self) -> dict[str, Any]:
        """Per shard: batches in the stream, batches read but not yet acknowledged, dead
        letters, and the age of the oldest batch waiting (the loader's lag, seconds)."""
        shards, group = get_setting("EVENT_STREAM_SHARDS"), get_setting("EVENT_LOADER_GROUP")
        pending = dead = waiting = 0
        oldest_ms = None
        try:
            for shard in range(shards):
                key = stream_key(shard)
                pipe = self.client.pipeline(transaction=False)
                pipe.xlen(key)
                pipe.xlen(dead_letter_key(shard))
                pipe.xrange(key, count=1)
                length, dead_count, first = pipe.execute()
                waiting += length
                dead += dead_count
                if first:
                    ms = int(first[0][0].decode().split("-")[0])
                    oldest_ms = ms if oldest_ms is None else min(oldest_ms, ms)
                try:
                    pending += self.client.xpending(key, group)["pending"]
                except Exception:  # no group yet: no loader has run
                    pass
        except Exception as exc:
            raise SinkUnavailable(str(exc)) from exc
        lag = max(0.0, time.time() - oldest_ms / 1000) if oldest_ms is not None else 0.0
        return {"sink": self.name, "pending_batches": waiting, "unacknowledged": pending,
                "dead_letters": dead, "lag_seconds": round(lag, 1), "shards": shards,
                "max_batches": get_setting("EVENT_STREAM_MAX_BATCHES")}
