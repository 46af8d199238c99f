"""Profile store on Redis through django-redis: one EVALSHA round trip a request.

The visit arithmetic runs in a Lua script so concurrent requests of one visitor stay correct;
both keys carry the hash tag ``{visitor id}`` so the script also runs on Redis Cluster.
"""

from __future__ import annotations

from ..conf import get_setting
from .base import Profile, ProfileStore, StoreUnavailable

# KEYS: profile hash, pages hash. ARGV: page key ("" for none), record (0/1), now, idle, ttl.
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
return {redis.call('HGETALL', p), count}
"""


class RedisProfileStore(ProfileStore):
    def __init__(self) -> None:
        from django_redis import get_redis_connection

        self.client = get_redis_connection(get_setting("REDIS_ALIAS"))
        self.script = self.client.register_script(LOAD_SCRIPT)

    def load(self, visitor_id: str, page_key: str | None, *, record_view: bool,
             now: float) -> Profile:
        keys = [self.key(visitor_id, "p"), self.key(visitor_id, "pages")]
        args = [page_key or "", "1" if record_view else "0", repr(float(now)),
                get_setting("VISIT_IDLE_SECONDS"), get_setting("PROFILE_TTL")]
        try:
            flat, count = self.script(keys=keys, args=args)
        except Exception as exc:  # connection refused, timeout, cluster move...
            raise StoreUnavailable(str(exc)) from exc
        state = {}
        for i in range(0, len(flat), 2):
            name = flat[i].decode() if isinstance(flat[i], bytes) else flat[i]
            state[name] = float(flat[i + 1])
        return self.to_profile(state, int(count), record_view=record_view)

    def clear(self, visitor_id: str) -> None:
        self.client.delete(self.key(visitor_id, "p"), self.key(visitor_id, "pages"))
