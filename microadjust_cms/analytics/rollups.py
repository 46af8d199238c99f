"""Keeping the rollups current: each refresh rebuilds the periods whose events may have changed.

Which periods: the database sink stores events in the request, and an event's ``occurred_at``
is within a day of when it was received (the schema refuses others), so everything received
since the last refresh occurred after ``last_run_at - 1 day``. Writers outside a request (the
event loader, whose backlog can be hours old; an erasure) announce the earliest event they
changed (``tracking.hooks.events_changed``), recorded in ``RollupState.dirty_from`` in their own
transaction. A refresh rebuilds the days from the earlier of the two to tomorrow, and the hours
of the last ``ROLLUP_HOURS`` hours among them; each day in its own transaction (delete, then
insert from grouped queries over that day's events: for all visitors and for each segment
stamped on them, per device and for all devices), so a report never sees half a day. On
PostgreSQL the database inserts each grouped query's rows itself (``INSERT ... SELECT``).
A failed refresh puts its start back into ``dirty_from``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Trunc
from django.dispatch import receiver
from django.utils import timezone

from ..conf import get_setting
from ..tracking.hooks import events_changed
from ..tracking.models import Event
from .models import (
    ALL_DEVICES,
    ALL_VISITORS,
    DWELL_EDGES_MS,
    SCROLL_MILESTONES,
    BlockRollup,
    PageRollup,
    Period,
    RollupState,
)

logger = logging.getLogger("microadjust_cms.analytics")
DAY = timedelta(days=1)


@dataclass
class RefreshStats:
    start: datetime | None = None
    end: datetime | None = None
    days: int = 0
    hours: int = 0
    block_rows: int = 0
    page_rows: int = 0


def mark_dirty(earliest: datetime) -> None:
    """Rebuild from ``earliest`` at the next refresh (call inside the writer's transaction)."""
    updated = RollupState.objects.filter(Q(dirty_from__isnull=True) | Q(dirty_from__gt=earliest),
                                         pk=1).update(dirty_from=earliest)
    if not updated:  # already dirty from earlier (the usual case: no row lock taken), or no row yet
        RollupState.objects.get_or_create(pk=1, defaults={"dirty_from": earliest})


@receiver(events_changed, dispatch_uid="microadjust-analytics-dirty")
def _events_changed(sender: object = None, earliest: datetime | None = None, **_kwargs: object) -> None:
    if earliest is not None:
        mark_dirty(earliest)


def _local_midnight(moment: datetime) -> datetime:
    local = timezone.localtime(moment, timezone.get_default_timezone())
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _claim(now: datetime) -> tuple[datetime, datetime] | None:
    """The range to rebuild, recorded as done (``dirty_from`` cleared): None with no events."""
    with transaction.atomic():
        state, _created = RollupState.objects.select_for_update().get_or_create(pk=1)
        if state.last_run_at is None:
            first = Event.objects.order_by("occurred_at").values_list("occurred_at", flat=True).first()
            start = first
        else:
            start = state.last_run_at - DAY
        if state.dirty_from is not None and (start is None or state.dirty_from < start):
            start = state.dirty_from
        state.last_run_at, state.dirty_from = now, None
        state.save(update_fields=["last_run_at", "dirty_from"])
    if start is None:
        return None
    return _local_midnight(start), _local_midnight(now + DAY) + DAY


def refresh(now: datetime | None = None) -> RefreshStats:
    """Rebuild what may have changed since the last refresh (module doc)."""
    now = now or timezone.now()
    claimed = _claim(now)
    stats = RefreshStats()
    if claimed is None:
        return stats
    stats.start, stats.end = claimed
    try:
        rebuild(stats.start, stats.end, now=now, stats=stats)
    except BaseException:
        with transaction.atomic():
            mark_dirty(stats.start)
        raise
    return stats


def rebuild(start: datetime, end: datetime, *, now: datetime | None = None,
            stats: RefreshStats | None = None) -> RefreshStats:
    """Rebuild the days from ``start`` to ``end`` (local midnights) and, among them, the hours
    of the last ``ROLLUP_HOURS``; hour rows older than that are dropped."""
    now = now or timezone.now()
    stats = stats or RefreshStats(start=start, end=end)
    # Hours start on the site's clock (a zone half an hour off UTC starts them at :30 UTC).
    hours_from = timezone.localtime(now - timedelta(hours=get_setting("ROLLUP_HOURS")),
                                    timezone.get_default_timezone()).replace(minute=0, second=0, microsecond=0)
    known = known_segments()
    day = start
    while day < end:
        following = _local_midnight(day + DAY + timedelta(hours=2))  # DST-proof next midnight
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # The planner costs these grouped queries above ``jit_above_cost``; compiling
                # took about 30 ms of each query's 100 (measured), and saved nothing.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL jit = off")
            # The day's segments serve its hours too (a segment absent from an hour adds no row).
            segments = (ALL_VISITORS, *_stamped_segments(day, following, known))
            stats.block_rows += _rebuild(BlockRollup, _block_query, day, following, Period.DAY, segments)
            stats.page_rows += _rebuild(PageRollup, _page_query, day, following, Period.DAY, segments)
            if following > hours_from:
                hour_start = max(day, hours_from)
                stats.block_rows += _rebuild(BlockRollup, _block_query, hour_start, following, Period.HOUR,
                                             segments)
                stats.page_rows += _rebuild(PageRollup, _page_query, hour_start, following, Period.HOUR,
                                            segments)
                stats.hours += 1
        stats.days += 1
        day = following
    BlockRollup.objects.filter(period=Period.HOUR, start__lt=hours_from).delete()
    PageRollup.objects.filter(period=Period.HOUR, start__lt=hours_from).delete()
    return stats


def _rebuild(model, query, start: datetime, end: datetime, period: str, segments: tuple[str, ...]) -> int:
    """Delete the period's rows, insert them anew: per device and for all devices together
    (``ALL_DEVICES``: distinct visitors are counted across devices, not summed); for each of
    ``segments`` (``ALL_VISITORS``, and the known segments stamped on the period's events)."""
    model.objects.filter(period=period, start__gte=start, start__lt=end).delete()
    inserted = 0
    for segment in segments:
        for by_device in (True, False):
            grouped = query(start, end, period, by_device, segment)
            if connection.vendor == "postgresql":
                inserted += _insert_select(model, grouped, period=period, segment=segment, by_device=by_device)
            else:
                objects = [model(period=period, segment=segment, **row) for row in _as_rows(grouped)]
                model.objects.bulk_create(objects, batch_size=1000)
                inserted += len(objects)
    return inserted


def _insert_select(model, grouped: QuerySet, *, period: str, segment: str, by_device: bool) -> int:
    """PostgreSQL: ``INSERT INTO <rollups> SELECT ... FROM (<the grouped query>)``, so the rows
    never travel to Python and back (half a rebuild's time went to building and inserting them).
    The bucket is local time (``Trunc`` with the site's zone); ``AT TIME ZONE`` makes it the
    instant Django would have stored."""
    quote = connection.ops.quote_name
    copied = [f.name for f in model._meta.concrete_fields
              if f.name not in ("id", "period", "segment", "start", "device")]
    columns = ["period", "segment", "start", "device", *copied]
    inner, inner_params = grouped.query.sql_with_params()
    sql = (f"INSERT INTO {quote(model._meta.db_table)} "
           f"({', '.join(quote(model._meta.get_field(c).column) for c in columns)}) "
           f"SELECT %s, %s, r.bucket AT TIME ZONE %s, {'r.device' if by_device else '%s'}, "
           f"{', '.join(f'r.{quote(c)}' for c in copied)} FROM ({inner}) AS r")
    params = [period, segment, timezone.get_default_timezone_name(),
              *(() if by_device else (ALL_DEVICES,)), *inner_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _as_rows(grouped: QuerySet) -> list[dict]:
    """The grouped query's rows as rollup fields (``bucket`` is ``start``; no device column
    means all devices)."""
    return [{"start": row.pop("bucket"), "device": row.pop("device", ALL_DEVICES), **row} for row in grouped]


def known_segments() -> set[str]:
    """Slugs a rollup may be kept for: rule segments and clusters (past runs' too) that exist.
    A slug forged into an event's stamp is stored with the event but rolled up for nobody."""
    from ..learning.models import Cluster
    from ..segments.models import Segment

    return {*Segment.objects.values_list("slug", flat=True), *Cluster.objects.values_list("slug", flat=True)}


def _stamped_segments(start: datetime, end: datetime, known: set[str]) -> list[str]:
    """The ``known`` segments stamped on some event of the period, in slug order."""
    stamps = (Event.objects.filter(occurred_at__gte=start, occurred_at__lt=end).exclude(segments="")
              .values_list("segments", flat=True).distinct().order_by())
    found = {slug for stamp in stamps for slug in stamp.split(" ")}
    return sorted(found & known)


def _in_segment(segment: str) -> Q:
    """Events whose stamp holds ``segment`` as a whole slug (slugs hold no space or %)."""
    return (Q(segments=segment) | Q(segments__startswith=f"{segment} ")
            | Q(segments__endswith=f" {segment}") | Q(segments__contains=f" {segment} "))


def _events(start: datetime, end: datetime, segment: str):
    events = Event.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
    return events.filter(_in_segment(segment)) if segment else events


def _trunc(period: str):
    return Trunc("occurred_at", period, tzinfo=timezone.get_default_timezone())


def _block_rows(start: datetime, end: datetime, period: str, by_device: bool = True,
                segment: str = ALL_VISITORS) -> list[dict]:
    """``_block_query``'s rows."""
    return _as_rows(_block_query(start, end, period, by_device, segment))


def _block_query(start: datetime, end: datetime, period: str, by_device: bool = True,
                 segment: str = ALL_VISITORS) -> QuerySet:
    """One grouped query: per period, page, block, variant and device (or all devices), over
    the events of all visitors or of those stamped with ``segment``. A converter is a visitor
    with an impression who converted later in the period, whatever the conversion's stamp."""
    converted = Event.objects.annotate(bucket=_trunc(period)).filter(
        type=Event.Type.CONVERSION, visitor_id=OuterRef("visitor_id"),
        occurred_at__gte=OuterRef("occurred_at"), occurred_at__lt=end, bucket=OuterRef("bucket"))
    impression = Q(type=Event.Type.IMPRESSION)
    dwell = Q(type=Event.Type.DWELL)
    buckets = {}
    low = 0
    for i, edge in enumerate((*DWELL_EDGES_MS, None)):
        within = dwell & Q(value__gte=low) & (Q(value__lt=edge) if edge is not None else Q())
        buckets[f"dwell_b{i}"] = Count("id", filter=within)
        low = edge
    rows = (_events(start, end, segment)
            .exclude(block_id="")
            .annotate(bucket=_trunc(period), converted=Exists(converted))
            .values("bucket", "page_id", "block_id", "variant", *(("device",) if by_device else ()))
            .annotate(impressions=Count("id", filter=impression),
                      visitors=Count("visitor_id", distinct=True, filter=impression),
                      clicks=Count("id", filter=Q(type=Event.Type.CLICK)),
                      abandons=Count("id", filter=Q(type=Event.Type.ABANDON)),
                      converters=Count("visitor_id", distinct=True,
                                       filter=impression & Q(converted=True)),
                      dwells=Count("id", filter=dwell),
                      dwell_ms=Sum("value", filter=dwell, default=0),
                      **buckets))
    return rows


def _page_query(start: datetime, end: datetime, period: str, by_device: bool = True,
                segment: str = ALL_VISITORS) -> QuerySet:
    pageview = Q(type=Event.Type.PAGEVIEW)
    scrolls = {f"scroll_{m}": Count("id", filter=Q(type=Event.Type.SCROLL, value=m))
               for m in SCROLL_MILESTONES}
    rows = (_events(start, end, segment).filter(page_id__isnull=False)
            .filter(Q(type=Event.Type.PAGEVIEW) | Q(type=Event.Type.SCROLL))
            .annotate(bucket=_trunc(period))
            .values("bucket", "page_id", *(("device",) if by_device else ()))
            .annotate(pageviews=Count("id", filter=pageview),
                      visitors=Count("visitor_id", distinct=True, filter=pageview), **scrolls))
    return rows

