"""Profile store on a Django cache: the embedded default (locmem) for the demo and tests.

One cache entry a visitor holds the counters and the per-page views. Read-modify-write is not
atomic across processes; use the Redis store in production.
"""

from __future__ import annotations

from django.core.cache import caches

from ..conf import get_setting
from .base import Profile, ProfileStore, StoreUnavailable


class CacheProfileStore(ProfileStore):
    def __init__(self) -> None:
        self.alias = get_setting("CACHE_ALIAS")

    @property
    def cache(self):
        return caches[self.alias]

    def load(self, visitor_id: str, page_key: str | None, *, record_view: bool,
             now: float) -> Profile:
        key = self.key(visitor_id, "p")
        cache = self.cache
        try:
            entry = cache.get(key) or {}
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc
        state = entry.get("state") or {}
        pages = entry.get("pages") or {}
        count = pages.get(page_key, 0) if page_key else 0
        state, count = self.advance(state, count, record_view=record_view, now=now,
                                    idle=get_setting("VISIT_IDLE_SECONDS"))
        if record_view:
            if page_key:
                pages = {**pages, page_key: count}
            try:
                cache.set(key, {"state": state, "pages": pages}, timeout=get_setting("PROFILE_TTL"))
            except Exception as exc:
                raise StoreUnavailable(str(exc)) from exc
        return self.to_profile(state, count, record_view=record_view)

    def clear(self, visitor_id: str) -> None:
        self.cache.delete(self.key(visitor_id, "p"))
