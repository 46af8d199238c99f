"""Profile store on a Django cache: the embedded default (locmem) for the demo and tests.

One cache entry a visitor holds the counters, the per-page views and behaviour ("pb": page →
[scroll depth, dwell seconds]) and the per-block behaviour ("blocks": block → [abandons,
clicks]). Read-modify-write is not atomic across processes; use the Redis store in production.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from django.core.cache import caches

from ...behaviour import BehaviourUpdate, apply_update
from ...conf import get_setting
from .base import Profile, ProfileStore, StoreUnavailable, chunked, counter_key, half_life_seconds


class CacheProfileStore(ProfileStore):
    def __init__(self) -> None:
        self.alias = get_setting("CACHE_ALIAS")

    @property
    def cache(self):
        return caches[self.alias]

    def load(self, visitor_id: str, page_key: str | None, *, record_view: bool,
             now: float, counters: tuple[str, ...] = ()) -> Profile:
        key = self.key(visitor_id, "p")
        cache = self._connect()  # one look-up of this thread's cache object for get and set
        if counters:  # the blocks' counters with the profile: one get_many
            found = self._get_many([key, *map(counter_key, counters)], cache)
            entry = found.get(key) or {}
            loaded = {block: dict(found.get(counter_key(block)) or {}) for block in counters}
        else:
            entry, loaded = self._get(key, cache), None
        state = entry.get("state") or {}
        pages = entry.get("pages") or {}
        count = pages.get(page_key, 0) if page_key else 0
        state, count = self.advance(state, count, record_view=record_view, now=now,
                                    idle=get_setting("VISIT_IDLE_SECONDS"))
        if record_view:
            if page_key:
                pages = {**pages, page_key: count}
            self._set(key, {**entry, "state": state, "pages": pages}, cache)
        behaviour = (entry.get("pb") or {}).get(page_key) if page_key else None
        cluster, run_id = entry.get("cluster") or ("", 0)
        if run_id:
            state = {**state, "cluster_run": run_id}
        return self.to_profile(state, count, record_view=record_view, now=now,
                               page_behaviour=behaviour or (0, 0.0), blocks=entry.get("blocks"),
                               cluster=cluster, counters=loaded)

    def load_counters(self, block_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        blocks = list(block_ids)
        found = self._get_many([counter_key(b) for b in blocks])
        return {block: dict(found.get(counter_key(block)) or {}) for block in blocks}

    def reset_counters(self, block_id: str) -> None:
        try:
            self.cache.delete(counter_key(block_id))
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc

    def _record_counters(self, counters: dict[str, dict[str, int]]) -> None:
        """Add a batch's counter increments (read-modify-write, like the rest of this store);
        a block past ``OPTIMIZE_MAX_COUNTERS`` fields takes no new ones (forged variants)."""
        keys = {block: counter_key(block) for block in counters}
        found = self._get_many(list(keys.values()))
        limit = get_setting("OPTIMIZE_MAX_COUNTERS")
        changed = {}
        for block, increments in counters.items():
            fields = dict(found.get(keys[block]) or {})
            for name, amount in increments.items():
                if name in fields or len(fields) < limit:
                    fields[name] = fields.get(name, 0) + amount
            changed[keys[block]] = fields
        try:
            self.cache.set_many(changed, timeout=get_setting("OPTIMIZE_COUNTER_TTL"))
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc

    def _get_many(self, keys: list[str], cache=None) -> dict:
        try:
            return (cache or self.cache).get_many(keys)
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc

    def record_events(self, visitor_id: str, update: BehaviourUpdate, *, now: float) -> None:
        key = self.key(visitor_id, "p")
        entry = self._get(key)
        state = apply_update(entry.get("state") or {}, update, now=now,
                             half_life=half_life_seconds())
        pages = dict(entry.get("pb") or {})
        for page in {*update.page_scroll, *update.page_dwell}:
            scroll, dwell = pages.get(page, (0, 0.0))
            pages[page] = (max(scroll, update.page_scroll.get(page, 0)),
                           dwell + update.page_dwell.get(page, 0.0))
        blocks = dict(entry.get("blocks") or {})
        for block in {*update.block_abandons, *update.block_clicks}:
            abandons, clicks = blocks.get(block, (0, 0))
            blocks[block] = (abandons + update.block_abandons.get(block, 0),
                             clicks + update.block_clicks.get(block, 0))
        self._set(key, {**entry, "state": state, "pb": pages, "blocks": blocks})
        if update.counters:
            self._record_counters(update.counters)

    def _connect(self):
        try:
            return self.cache
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc

    def _get(self, key: str, cache=None) -> dict:
        try:
            return (cache or self.cache).get(key) or {}
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc

    def _set(self, key: str, entry: dict, cache=None) -> None:
        try:
            (cache or self.cache).set(key, entry, timeout=get_setting("PROFILE_TTL"))
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc

    def clear(self, visitor_id: str) -> None:
        self.cache.delete(self.key(visitor_id, "p"))

    def set_clusters(self, assignments: Iterable[tuple[str, str]], *, run_id: int) -> int:
        """``get_many`` per chunk, then each entry written back with the TTL it had left: the
        Django cache cannot set a value and keep its expiry, and restarting it every night would
        keep a profile long past ``PROFILE_TTL`` after the visitor's last activity (the Redis
        store keeps the TTL with ``EXPIRE NX``). What is left is counted from the last activity
        the entry records; an entry without any gets the full TTL, as on Redis."""
        written, ttl, now = 0, get_setting("PROFILE_TTL"), time.time()
        try:
            cache = self.cache
            for chunk in chunked(assignments, get_setting("CLUSTER_ASSIGN_CHUNK")):
                keys = {self.key(visitor_id, "p"): slug for visitor_id, slug in chunk}
                entries = cache.get_many(list(keys))
                for key, slug in keys.items():
                    entry = entries.get(key, {})
                    state = entry.get("state") or {}
                    last = max(float(state.get(name) or 0.0) for name in ("last_seen", "eng_at", "aff_at"))
                    left = min(ttl, ttl - (now - last)) if last else ttl
                    if left > 0:
                        cache.set(key, {**entry, "cluster": (slug, run_id)}, timeout=left)
                written += len(chunk)
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc
        return written
