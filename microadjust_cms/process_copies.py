"""Per-process copies of database state, refreshed when any process publishes a change.

Rule segments, the latest clustering run and the active engagement model are read on every
render that needs them, so each process keeps its own copy and render runs no SQL in the steady
state. A change (an editor saves a segment, a run finishes, a model is activated) publishes a new
generation number in the shared Django cache (``CACHE_ALIAS``: Redis in production); each process
reads that one key at most every ``refresh`` seconds and reloads when it moved. With the cache
unreachable the process keeps its copy, and the failure is counted and logged once an interval
(``faults``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.core.cache import caches

from .conf import get_setting
from .faults import record

T = TypeVar("T")
logger = logging.getLogger("microadjust_cms.process_copies")
_MISSING: Any = object()


class ProcessCopy(Generic[T]):
    """``get()`` returns this process's copy of what ``load()`` reads, reloaded after
    ``invalidate()`` anywhere. ``refresh_setting`` names the seconds between generation checks."""

    def __init__(self, what: str, generation_key: str, load: Callable[[], T], refresh_setting: str) -> None:
        self.what = what
        self.generation_key = generation_key
        self.load = load
        self.refresh_setting = refresh_setting
        self.lock = threading.Lock()
        self.value: T = _MISSING
        self.generation: Any = None
        self.checked = 0.0

    def _cache(self) -> Any:
        return caches[get_setting("CACHE_ALIAS")]

    def _current_generation(self) -> Any:
        try:
            return self._cache().get(self.generation_key)
        except Exception:
            record("generation_cache", "Could not read the %s generation; keeping this "
                   "process's copy", self.what, log=logger)
            return self.generation

    def get(self) -> T:
        value, now = self.value, time.monotonic()
        if value is not _MISSING and now - self.checked < get_setting(self.refresh_setting):
            return value
        with self.lock:
            generation = self._current_generation()
            if self.value is _MISSING or generation != self.generation:
                self.value = self.load()
                self.generation = generation
            self.checked = now
            return self.value

    def forget(self) -> None:
        """Reload on the next use in this process only."""
        with self.lock:
            self.value = _MISSING

    def invalidate(self) -> None:
        """The state changed: this process reloads on next use, every other one soon."""
        self.forget()
        try:
            self._cache().set(self.generation_key, time.time_ns(), None)
        except Exception:
            record("generation_cache", "Could not publish the %s generation", self.what, log=logger)
