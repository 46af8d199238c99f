"""Rule segments at render time: compiled once per process, refreshed when an editor saves.

Render needs zero SQL: segments are read from the database on first use and after a change
(signalled through the Django cache, checked at most every ``SEGMENT_REFRESH_SECONDS``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.core.cache import caches

from .conditions import Predicate, compile_condition
from .conf import get_setting

logger = logging.getLogger("microadjust_cms.segments")
GENERATION_KEY = "microadjust:segments:generation"


class _SegmentCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.predicates: dict[str, Predicate] | None = None
        self.generation: Any = None
        self.checked = 0.0

    def _cache(self):
        return caches[get_setting("CACHE_ALIAS")]

    def _current_generation(self) -> Any:
        try:
            return self._cache().get(GENERATION_KEY)
        except Exception:
            logger.warning("Could not read the segment generation", exc_info=True)
            return self.generation

    def get(self) -> dict[str, Predicate]:
        now = time.monotonic()
        if self.predicates is not None and now - self.checked < get_setting(
                "SEGMENT_REFRESH_SECONDS"):
            return self.predicates
        with self.lock:
            generation = self._current_generation()
            if self.predicates is None or generation != self.generation:
                self._reload()
                self.generation = generation
            self.checked = now
            return self.predicates  # type: ignore[return-value]

    def _reload(self) -> None:
        from .models import Segment

        rows = Segment.objects.values_list("slug", "condition")
        self.predicates = {slug: compile_condition(condition) for slug, condition in rows}

    def invalidate(self) -> None:
        """Called after an editor saves or deletes a segment (any process sees it soon)."""
        with self.lock:
            self.predicates = None
        try:
            self._cache().set(GENERATION_KEY, time.time_ns(), None)
        except Exception:
            logger.warning("Could not publish the segment generation", exc_info=True)


segment_cache = _SegmentCache()


def rule_segment_choices() -> list[tuple[str, str]]:
    from .models import Segment

    return list(Segment.objects.order_by("name").values_list("slug", "name"))


def segment_choices() -> list[tuple[str, str]]:
    """Rule segments, then the active cluster segments (``cluster-<n>``)."""
    from .cluster_segments import cluster_segment_choices

    return rule_segment_choices() + cluster_segment_choices()


class SegmentMembership:
    """Set-like and lazy: ``"slug" in visitor.segments`` evaluates that one segment only."""

    def __init__(self, visitor: Any) -> None:
        self.visitor = visitor
        self._known: dict[str, bool] = {}
        self._evaluating: set[str] = set()
        self._predicates: dict[str, Predicate] | None = None  # one look per request

    def __contains__(self, slug: object) -> bool:
        if not isinstance(slug, str):
            return False
        forced = self.visitor.overrides.get("segments")
        if forced is not None:
            return slug in forced
        if slug in self._known:
            return self._known[slug]
        if slug in self._evaluating:  # a segment that refers to itself: not a member
            logger.warning("Segment %r refers to itself", slug)
            return False
        predicates = self._predicates
        if predicates is None:
            predicates = self._predicates = segment_cache.get()
        predicate = predicates.get(slug)
        if predicate is None:  # not a rule segment: perhaps a cluster segment
            result = self._known[slug] = _in_cluster(self.visitor, slug)
            return result
        self._evaluating.add(slug)
        try:
            result = bool(predicate and predicate(self.visitor))
        finally:
            self._evaluating.discard(slug)
        self._known[slug] = result
        return result

    def __iter__(self):
        from .cluster_segments import cluster_cache

        forced = self.visitor.overrides.get("segments")
        slugs = forced if forced is not None else [*segment_cache.get().keys(), *cluster_cache.get().active]
        return iter([slug for slug in slugs if slug in self])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def any(self) -> bool:
        return len(self) > 0


def _in_cluster(visitor: Any, slug: str) -> bool:
    """Membership of a cluster segment: the visitor's ``cluster`` signal names it. False when
    the profile store is down (as every profile rule)."""
    from .cluster_segments import is_cluster_slug
    from .stores import StoreUnavailable

    if not is_cluster_slug(slug):
        return False
    try:
        return visitor.signal("cluster") == slug
    except StoreUnavailable:
        return False
