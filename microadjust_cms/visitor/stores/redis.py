"""Profile store on Redis through django-redis: one EVALSHA round trip a request.

The visit and decay arithmetic runs in Lua scripts so concurrent requests of one visitor stay
correct; every key carries the hash tag ``{visitor id}`` so the scripts also run on Redis
Cluster. Keys: ``p`` (counters, engagement, ``aff:<name>`` affinity), ``pages`` (``<page>``
views, ``s:<page>`` scroll depth, ``d:<page>`` dwell seconds), ``b`` (``a:<block>`` abandons,
``c:<block>`` clicks). Auto-optimize counters are one hash a block (``counter_key``), read by
the load script and written by the record script when a page or a batch involves them.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...behaviour import BehaviourUpdate
from ...conf import get_setting
from ...redis_scripts import Script
from .base import Profile, ProfileStore, StoreUnavailable, chunked, counter_key, half_life_seconds

# KEYS: profile, pages, blocks, then counter hashes of auto-optimized blocks.
# ARGV: page key ("" for none), record (0/1), now, idle, ttl.
LOAD_SCRIPT = """
local p, pages = KEYS[1], KEYS[2]
local page, record = ARGV[1], ARGV[2] == '1'
local now, idle, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local count = 0
if page ~= '' then count = tonumber(redis.call('HGET', pages, page) or '0') end
if record then
  local last = tonumber(redis.call('HGET', p, 'last_seen') or '0')
  local visits = tonumber(redis.call('HGET', p, 'visits') or '0')
  if visits == 0 or now - last > idle then
    if visits > 0 then redis.call('HSET', p, 'last_visit_end', tostring(last)) end
    redis.call('HINCRBY', p, 'visits', 1)
    redis.call('HSET', p, 'visit_pageviews', 0)
  end
  redis.call('HINCRBY', p, 'visit_pageviews', 1)
  redis.call('HINCRBY', p, 'total_pageviews', 1)
  redis.call('HSETNX', p, 'first_seen', ARGV[3])
  redis.call('HSET', p, 'prev_seen', tostring(last), 'last_seen', ARGV[3])
  redis.call('EXPIRE', p, ttl)
  if page ~= '' then
    count = redis.call('HINCRBY', pages, page, 1)
    redis.call('EXPIRE', pages, ttl)
  end
end
local behaviour = {false, false}
if page ~= '' then behaviour = redis.call('HMGET', pages, 's:' .. page, 'd:' .. page) end
local counters = {}
for k = 4, #KEYS do counters[#counters + 1] = redis.call('HGETALL', KEYS[k]) end
return {redis.call('HGETALL', p), count, behaviour, redis.call('HGETALL', KEYS[3]), counters}
"""

# KEYS: profile, pages, blocks, then counter hashes. ARGV: now, half-life seconds, ttl,
# engagement points, conversions, then counted lists: affinity (name, points), pages (page,
# scroll, dwell seconds), blocks (block, abandons, clicks), counters (index in KEYS, field,
# increment), then the counters' TTL and field limit. Same arithmetic as
# ``behaviour.apply_update``.
RECORD_SCRIPT = """
local p, pages, b = KEYS[1], KEYS[2], KEYS[3]
local now, half, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local function decayed(v, since)
  if v <= 0 or since <= 0 or now <= since then return math.max(v, 0) end
  return v * math.pow(0.5, (now - since) / half)
end
local function num(v) return string.format('%.17g', v) end
-- The profile hash is read once (HMGET, or HGETALL when affinity needs every aff: field) and
-- written once (one HSET): each redis.call costs the script about as much as the command.
local n = tonumber(ARGV[6])
local i = 7
local eng, eng_at
local set = {}
if n > 0 then
  local all = redis.call('HGETALL', p)
  local fields = {}
  for j = 1, #all, 2 do fields[all[j]] = all[j + 1] end
  eng, eng_at = fields['eng'], fields['eng_at']
  local since = tonumber(fields['aff_at'] or '0')
  local affinity = {}
  for name, value in pairs(fields) do
    if string.sub(name, 1, 4) == 'aff:' then affinity[name] = decayed(tonumber(value), since) end
  end
  for _ = 1, n do
    local name = 'aff:' .. ARGV[i]
    affinity[name] = (affinity[name] or 0) + tonumber(ARGV[i + 1]); i = i + 2
  end
  for name, value in pairs(affinity) do set[#set + 1] = name; set[#set + 1] = num(value) end
  set[#set + 1] = 'aff_at'; set[#set + 1] = ARGV[1]
else
  local got = redis.call('HMGET', p, 'eng', 'eng_at')
  eng, eng_at = got[1], got[2]
end
set[#set + 1] = 'eng'
set[#set + 1] = num(decayed(tonumber(eng or '0'), tonumber(eng_at or '0')) + tonumber(ARGV[4]))
set[#set + 1] = 'eng_at'; set[#set + 1] = ARGV[1]
for j = 1, #set, 4000 do  -- unpack's stack is bounded: a few thousand fields a call
  redis.call('HSET', p, unpack(set, j, math.min(j + 3999, #set)))
end
if tonumber(ARGV[5]) > 0 then redis.call('HINCRBY', p, 'conv', ARGV[5]) end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local page, scroll, dwell = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local had = redis.call('HMGET', pages, 's:' .. page, 'd:' .. page)
  local write = {}
  if scroll > tonumber(had[1] or '0') then write = {'s:' .. page, ARGV[i + 1]} end
  if dwell > 0 then
    write[#write + 1] = 'd:' .. page; write[#write + 1] = num(tonumber(had[2] or '0') + dwell)
  end
  if #write > 0 then redis.call('HSET', pages, unpack(write)) end
  i = i + 3
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  if ARGV[i + 1] ~= '0' then redis.call('HINCRBY', b, 'a:' .. ARGV[i], ARGV[i + 1]) end
  if ARGV[i + 2] ~= '0' then redis.call('HINCRBY', b, 'c:' .. ARGV[i], ARGV[i + 2]) end
  i = i + 3
end
n = tonumber(ARGV[i]); i = i + 1
if n > 0 then
  local counter_ttl, limit = ARGV[i + 3 * n], tonumber(ARGV[i + 3 * n + 1])
  for _ = 1, n do
    local key = KEYS[tonumber(ARGV[i])]
    -- A block takes no new counter past the limit (forged variant names); known ones count.
    if redis.call('HLEN', key) < limit or redis.call('HEXISTS', key, ARGV[i + 1]) == 1 then
      redis.call('HINCRBY', key, ARGV[i + 1], ARGV[i + 2])
    end
    redis.call('EXPIRE', key, counter_ttl)
    i = i + 3
  end
end
redis.call('EXPIRE', p, ttl)
redis.call('EXPIRE', pages, ttl)  -- a key that does not exist is left alone
redis.call('EXPIRE', b, ttl)
return 1
"""


def record_args(update: BehaviourUpdate, now: float) -> list:
    """``RECORD_SCRIPT``'s ARGV for ``update`` (the event sink's script passes the same)."""
    args: list = [repr(float(now)), half_life_seconds(),
                  get_setting("PROFILE_TTL"), repr(update.engagement), update.conversions]
    args.append(len(update.affinity))
    for name, points in update.affinity.items():
        args += [name, repr(points)]
    pages = sorted({*update.page_scroll, *update.page_dwell})
    args.append(len(pages))
    for page in pages:
        args += [page, update.page_scroll.get(page, 0), repr(update.page_dwell.get(page, 0.0))]
    blocks = sorted({*update.block_abandons, *update.block_clicks})
    args.append(len(blocks))
    for block in blocks:
        args += [block, update.block_abandons.get(block, 0), update.block_clicks.get(block, 0)]
    entries = [(index, name, amount)
               for index, block in enumerate(counter_blocks(update), start=4)
               for name, amount in update.counters[block].items()]
    args.append(len(entries))
    for entry in entries:
        args += entry
    if entries:
        args += [get_setting("OPTIMIZE_COUNTER_TTL"), get_setting("OPTIMIZE_MAX_COUNTERS")]
    return args


def counter_blocks(update: BehaviourUpdate) -> list[str]:
    """The blocks whose counter hashes follow the profile keys (``record_keys``), in order."""
    return sorted(update.counters)


def record_keys(profile_keys: list[str], update: BehaviourUpdate) -> list[str]:
    """``RECORD_SCRIPT``'s KEYS: the visitor's three, then the counter hash of each block the
    batch counts for (``record_args`` refers to them by position)."""
    return [*profile_keys, *(counter_key(block) for block in counter_blocks(update))]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _counts(flat: list) -> dict[str, int]:
    """An HGETALL answer (field, value, field, value...) as counter field → count."""
    return {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}


class RedisProfileStore(ProfileStore):
    def __init__(self) -> None:
        from django_redis import get_redis_connection

        self.client = get_redis_connection(get_setting("REDIS_ALIAS"))
        self.script = Script(self.client, LOAD_SCRIPT)  # on the thread's own connection
        self.record_script = Script(self.client, RECORD_SCRIPT)

    def keys(self, visitor_id: str) -> list[str]:
        return [self.key(visitor_id, "p"), self.key(visitor_id, "pages"),
                self.key(visitor_id, "b")]

    def load(self, visitor_id: str, page_key: str | None, *, record_view: bool,
             now: float, counters: tuple[str, ...] = ()) -> Profile:
        args = [page_key or "", "1" if record_view else "0", repr(float(now)),
                get_setting("VISIT_IDLE_SECONDS"), get_setting("PROFILE_TTL")]
        keys = self.keys(visitor_id)
        if counters:
            keys += [counter_key(block) for block in counters]
        try:
            flat, count, behaviour, flat_blocks, flat_counters = self.script(keys=keys, args=args)
        except Exception as exc:  # connection refused, timeout, cluster move...
            raise StoreUnavailable(str(exc)) from exc
        state = {}
        cluster = ""
        for i in range(0, len(flat), 2):
            name = flat[i].decode() if isinstance(flat[i], bytes) else flat[i]
            if name == "cluster":  # the one text field (a slug)
                value = flat[i + 1]
                cluster = value.decode() if isinstance(value, bytes) else value
                continue
            state[name] = float(flat[i + 1])
        blocks: dict[str, tuple[int, int]] = {}
        for i in range(0, len(flat_blocks), 2):
            name = flat_blocks[i].decode() if isinstance(flat_blocks[i], bytes) else flat_blocks[i]
            abandons, clicks = blocks.get(name[2:], (0, 0))
            if name.startswith("a:"):
                abandons = int(flat_blocks[i + 1])
            else:
                clicks = int(flat_blocks[i + 1])
            blocks[name[2:]] = (abandons, clicks)
        scroll, dwell = (float(v) if v is not None else 0 for v in behaviour or (None, None))
        loaded = ({block: _counts(flat) for block, flat in zip(counters, flat_counters, strict=True)}
                  if counters else None)
        return self.to_profile(state, int(count), record_view=record_view, now=now,
                               page_behaviour=(scroll, dwell), blocks=blocks, cluster=cluster,
                               counters=loaded)

    def load_counters(self, block_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        blocks = list(block_ids)
        try:
            pipe = self.client.pipeline(transaction=False)
            for block in blocks:
                pipe.hgetall(counter_key(block))
            found = pipe.execute()
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc
        return {block: {_text(k): int(v) for k, v in fields.items()}
                for block, fields in zip(blocks, found, strict=True)}

    def reset_counters(self, block_id: str) -> None:
        try:
            self.client.delete(counter_key(block_id))
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc

    def record_events(self, visitor_id: str, update: BehaviourUpdate, *, now: float) -> None:
        try:
            self.record_script(keys=record_keys(self.keys(visitor_id), update),
                               args=record_args(update, now))
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc

    def clear(self, visitor_id: str) -> None:
        self.client.delete(*self.keys(visitor_id))

    def set_clusters(self, assignments: Iterable[tuple[str, str]], *, run_id: int) -> int:
        """A non-transactional pipeline per chunk: HSET the slug and run into the profile hash,
        and EXPIRE NX so a new profile expires while an existing one keeps its TTL (Redis 7)."""
        ttl, written = get_setting("PROFILE_TTL"), 0
        try:
            for chunk in chunked(assignments, get_setting("CLUSTER_ASSIGN_CHUNK")):
                pipe = self.client.pipeline(transaction=False)
                for visitor_id, slug in chunk:
                    key = self.key(visitor_id, "p")
                    pipe.hset(key, mapping={"cluster": slug, "cluster_run": run_id})
                    pipe.expire(key, ttl, nx=True)
                pipe.execute()
                written += len(chunk)
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc
        return written
