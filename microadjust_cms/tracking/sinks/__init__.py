"""Event sinks: the database (embedded default) or a Redis Stream drained by a loader."""

from __future__ import annotations

from functools import lru_cache

from django.utils.module_loading import import_string

from ...conf import get_setting
from .base import Batch, EventSink, RateLimited, SinkFull, SinkUnavailable, new_batch_id

__all__ = ["Batch", "EventSink", "RateLimited", "SinkFull", "SinkUnavailable", "get_event_sink",
           "new_batch_id"]


@lru_cache(maxsize=8)
def _load(path: str) -> EventSink:
    return import_string(path)()


def get_event_sink() -> EventSink:
    """The sink named by ``MICROADJUST_EVENT_SINK`` (one instance per process)."""
    return _load(get_setting("EVENT_SINK"))


get_event_sink.cache_clear = _load.cache_clear  # type: ignore[attr-defined]
