"""Rule segments at render time: compiled once per process, refreshed when an editor saves.

Render needs zero SQL: segments are read from the database on first use and after a change
(signalled through the Django cache, checked at most every ``SEGMENT_REFRESH_SECONDS``).
"""

from __future__ import annotations

import logging
from typing import Any

from ..conditions import Predicate, compile_condition
from ..process_copies import ProcessCopy

logger = logging.getLogger("microadjust_cms.segments")
GENERATION_KEY = "microadjust:segments:generation"


def _load_predicates() -> dict[str, Predicate]:
    from .models import Segment

    rows = Segment.objects.values_list("slug", "condition")
    return {slug: compile_condition(condition) for slug, condition in rows}


#: Compiled rule segments by slug; ``invalidate()`` after an editor saves or deletes one.
segment_cache: ProcessCopy[dict[str, Predicate]] = ProcessCopy(
    "segment", GENERATION_KEY, _load_predicates, "SEGMENT_REFRESH_SECONDS")


def rule_segment_choices() -> list[tuple[str, str]]:
    from .models import Segment

    return list(Segment.objects.order_by("name").values_list("slug", "name"))


def segment_choices() -> list[tuple[str, str]]:
    """Rule segments, then the active cluster segments (``cluster-<n>``)."""
    from .clusters import cluster_segment_choices

    return rule_segment_choices() + cluster_segment_choices()


def membership(visitor: Any) -> SegmentMembership:
    """The visitor's segments this request (one ``SegmentMembership``, kept in its memo)."""
    memo = visitor.memo
    found = memo.get("__segments")
    if found is None:
        found = memo["__segments"] = SegmentMembership(visitor)
    return found


class SegmentMembership:
    """Set-like and lazy: ``"slug" in membership(visitor)`` evaluates that one segment only."""

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
        from .clusters import cluster_cache

        forced = self.visitor.overrides.get("segments")
        slugs = forced if forced is not None else [*segment_cache.get().keys(), *cluster_cache.get().active]
        return iter([slug for slug in slugs if slug in self])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def any(self) -> bool:
        return len(self) > 0


def segment_stamp(visitor: Any, *, limit: int, length: int) -> str:
    """The visitor's segments as the tracker stamps them on events (``Event.segments``): the
    cluster first, then rule segments in slug order, space-separated, at most ``limit`` slugs
    and ``length`` characters (a slug that would not fit is left out, never cut)."""
    from .clusters import cluster_cache

    if visitor.overrides.get("segments") is not None:
        return ""  # a preview "as a segment" is an editor, not a visitor
    found = membership(visitor)
    rules = segment_cache.get()
    stamp: list[str] = []
    size = -1
    for slug in [*cluster_cache.get().active, *sorted(rules)]:
        if len(stamp) >= limit:
            break
        if size + 1 + len(slug) <= length and slug in found:
            stamp.append(slug)
            size += 1 + len(slug)
    return " ".join(stamp)


def _in_cluster(visitor: Any, slug: str) -> bool:
    """Membership of a cluster segment: the visitor's ``cluster`` signal names it. False when
    the profile store is down (as every profile rule)."""
    from ..visitor.stores import StoreUnavailable
    from .clusters import is_cluster_slug

    if not is_cluster_slug(slug):
        return False
    try:
        return visitor.signal("cluster") == slug
    except StoreUnavailable:
        return False


def _segments_changed(**_kwargs: object) -> None:
    segment_cache.invalidate()


def connect_signals() -> None:
    """Called from the app's ``ready``: an editor's save or delete reaches every process."""
    from django.db.models.signals import post_delete, post_save

    from .models import Segment

    post_save.connect(_segments_changed, sender=Segment, dispatch_uid="ma-segment-save")
    post_delete.connect(_segments_changed, sender=Segment, dispatch_uid="ma-segment-delete")
