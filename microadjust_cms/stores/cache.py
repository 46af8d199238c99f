"""Profile store on a Django cache: the embedded default (locmem) for the demo and tests.

Read-modify-write is not atomic across processes; use the Redis store in production.
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
        profile_key = self.key(visitor_id, "p")
        pages_key = self.key(visitor_id, "pages")
        try:
            found = self.cache.get_many([profile_key, pages_key])
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc
        state = found.get(profile_key) or {}
        pages = found.get(pages_key) or {}
        count = pages.get(page_key, 0) if page_key else 0
        state, count = self.advance(state, count, record_view=record_view, now=now,
                                    idle=get_setting("VISIT_IDLE_SECONDS"))
        if record_view:
            updates = {profile_key: state}
            if page_key:
                pages = dict(pages)
                pages[page_key] = count
                updates[pages_key] = pages
            try:
                self.cache.set_many(updates, timeout=get_setting("PROFILE_TTL"))
            except Exception as exc:
                raise StoreUnavailable(str(exc)) from exc
        return self.to_profile(state, count, record_view=record_view)

    def clear(self, visitor_id: str) -> None:
        self.cache.delete_many([self.key(visitor_id, "p"), self.key(visitor_id, "pages")])
