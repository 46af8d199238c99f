"""Profile stores: where the hot per-visitor state lives (Redis in production)."""

from __future__ import annotations

from functools import lru_cache

from django.utils.module_loading import import_string

from ...conf import get_setting
from .base import Profile, ProfileStore, StoreUnavailable, visitor_key

__all__ = ["Profile", "ProfileStore", "StoreUnavailable", "get_profile_store", "visitor_key"]


@lru_cache(maxsize=8)
def _load(path: str) -> ProfileStore:
    cls = import_string(path)
    return cls()


def get_profile_store() -> ProfileStore:
    """The store named by ``MICROADJUST_PROFILE_STORE`` (one instance per process)."""
    return _load(get_setting("PROFILE_STORE"))


get_profile_store.cache_clear = _load.cache_clear  # type: ignore[attr-defined]
