"""Figures for editors, read from the rollups only (never from the event table).

Over a date range, counts are sums of daily rows. Visitors are distinct within a day, so over
several days ``visitors`` counts visitor-days (a visitor on three days counts three times), and
conversion rates are per visitor-day. Dwell medians and 90th percentiles come from the summed
histogram (``DWELL_EDGES_MS``), interpolated within a bucket. A group whose busiest day had
fewer than ``ANALYTICS_MIN_VISITORS`` visitors is shown as "fewer than N", without figures:
the busiest day is a floor of the distinct visitors over the range, so no group that small is
ever shown, whatever the range. Without a device filter the rows for all devices together are
read (``ALL_DEVICES``: a visitor on two devices is one visitor there); likewise the rows for all
visitors (``ALL_VISITORS``) without a segment filter. A segment's figures count the events
stamped with it when their page was rendered (``Event.segments``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Max, QuerySet, Sum
from django.utils import timezone

from ..conf import get_setting
from ..experiments.stats_core import wilson_interval
from .models import (
    ALL_DEVICES,
    ALL_VISITORS,
    DWELL_BUCKETS,
    DWELL_EDGES_MS,
    SCROLL_MILESTONES,
    BlockRollup,
    PageRollup,
    Period,
)

#: The rollup counts summed over a range.
SUMMED_FIELDS = ("impressions", "visitors", "clicks", "abandons", "converters", "dwells", "dwell_ms",
         *(f"dwell_b{i}" for i in range(DWELL_BUCKETS)))


@dataclass(frozen=True)
class VariantFigures:
    page_id: int | None
    block_id: str
    variant: str
    #: Fewer visitors than ``ANALYTICS_MIN_VISITORS`` on the busiest day: no figures shown.
    hidden: bool
    impressions: int | None = None
    visitors: int | None = None
    clicks: int | None = None
    ctr: float | None = None
    ctr_interval: tuple[float, float] | None = None
    dwell_median_s: float | None = None
    dwell_p90_s: float | None = None
    abandon_rate: float | None = None
    converters: int | None = None
    conversion_rate: float | None = None


@dataclass(frozen=True)
class PageDropoff:
    page_id: int
    hidden: bool
    pageviews: int | None = None
    visitors: int | None = None
    #: Milestone (25, 50, 75, 90, 100) → share of page views that scrolled that far.
    reached: dict[int, float] | None = None


def day_range(start: date, end: date) -> tuple[datetime, datetime]:
    """Local midnight of ``start`` to local midnight after ``end`` (both days included)."""
    zone = timezone.get_default_timezone()
    return (datetime.combine(start, time(), tzinfo=zone),
            datetime.combine(end + timedelta(days=1), time(), tzinfo=zone))


def quantile_from_buckets(counts: list[int], q: float) -> float | None:
    """The ``q`` quantile (0 to 1) of a dwell histogram, in seconds; None when it is empty.
    Linear within the bucket it falls in; in the open last bucket, the bucket's lower edge."""
    total = sum(counts)
    if not total:
        return None
    target = q * total
    seen = 0
    low = 0
    for i, count in enumerate(counts):
        high = DWELL_EDGES_MS[i] if i < len(DWELL_EDGES_MS) else None
        if count and seen + count >= target:
            if high is None:
                return low / 1000
            return (low + (high - low) * (target - seen) / count) / 1000
        seen += count
        low = high if high is not None else low
    return low / 1000


def _hidden(busiest_day: int | None) -> bool:
    return (busiest_day or 0) < get_setting("ANALYTICS_MIN_VISITORS")


def day_rows(model: type[BlockRollup] | type[PageRollup], start: date, end: date, *,
             device: str | None = None, segment: str | None = None) -> QuerySet:
    """The day rows of ``model`` from ``start`` to ``end`` for one device (or all devices) and
    one segment (or all visitors)."""
    first, after = day_range(start, end)
    return _rollups(model, Period.DAY, device, segment).filter(start__gte=first, start__lt=after)


def _rollups(model: type[BlockRollup] | type[PageRollup], period: str, device: str | None,
             segment: str | None) -> QuerySet:
    """``model``'s rows of ``period`` for one device (or all devices) and one segment (or all
    visitors): the rows a report reads, never the per-device or per-segment ones summed."""
    return model.objects.filter(period=period, device=device or ALL_DEVICES, segment=segment or ALL_VISITORS)


def variant_totals(start: date, end: date, *, device: str | None = None, segment: str | None = None,
                   page_id: int | None = None, block_id: str | None = None) -> QuerySet:
    """The grouped query behind ``block_figures`` (and the admin report, which sorts it): per
    page, block and variant, ``SUMMED_FIELDS`` summed over the days and ``busiest``."""
    rows = day_rows(BlockRollup, start, end, device=device, segment=segment)
    if page_id is not None:
        rows = rows.filter(page_id=page_id)
    if block_id:
        rows = rows.filter(block_id=block_id)
    # One row per day and group: the largest ``visitors`` is the busiest day.
    return (rows.values("page_id", "block_id", "variant")
            .annotate(busiest=Max("visitors"), **{name: Sum(name) for name in SUMMED_FIELDS}))


def block_figures(start: date, end: date, **filters: object) -> list[VariantFigures]:
    """Per page, block and variant over the days ``start`` to ``end`` (included), most
    impressions first (``variant_totals``' filters). One grouped query over the day rows."""
    totals = variant_totals(start, end, **filters).order_by("-impressions", "block_id", "variant")
    return [variant_figures(row, row["busiest"]) for row in totals]


def variant_figures(row: dict, busiest_day: int | None) -> VariantFigures:
    """Figures from a row of summed counts (``SUMMED_FIELDS``) and its busiest day's visitors."""
    key = {"page_id": row["page_id"], "block_id": row["block_id"], "variant": row["variant"]}
    if _hidden(busiest_day):
        return VariantFigures(**key, hidden=True)
    impressions, clicks = row["impressions"] or 0, row["clicks"] or 0
    buckets = [row[f"dwell_b{i}"] or 0 for i in range(DWELL_BUCKETS)]
    visitors = row["visitors"] or 0
    return VariantFigures(
        **key, hidden=False, impressions=impressions, visitors=visitors, clicks=clicks,
        ctr=clicks / impressions if impressions else None,
        # Clicks can outnumber impressions (several clicks in one view): the interval is of
        # the capped rate.
        ctr_interval=wilson_interval(min(clicks, impressions), impressions) if impressions else None,
        dwell_median_s=quantile_from_buckets(buckets, 0.5),
        dwell_p90_s=quantile_from_buckets(buckets, 0.9),
        abandon_rate=(row["abandons"] or 0) / impressions if impressions else None,
        converters=row["converters"] or 0,
        conversion_rate=(row["converters"] or 0) / visitors if visitors else None)


@dataclass(frozen=True)
class BlockSummary:
    """A block on a page, all its variants together, and each variant's figures."""

    block_id: str
    hidden: bool
    impressions: int | None
    ctr: float | None
    #: Dwells of at least ``ENGAGEMENT_DWELL_SECONDS`` per impression.
    engagement_rate: float | None
    abandon_rate: float | None
    dwell_median_s: float | None
    variants: list[VariantFigures]


def engaged_dwells(buckets: list[int]) -> int:
    """Dwells in buckets whose lower edge is at least ``ENGAGEMENT_DWELL_SECONDS``."""
    threshold = get_setting("ENGAGEMENT_DWELL_SECONDS") * 1000
    lower_edges = (0, *DWELL_EDGES_MS)
    return sum(count for low, count in zip(lower_edges, buckets, strict=True) if low >= threshold)


def page_blocks(page_id: int, start: date, end: date, *, device: str | None = None,
                segment: str | None = None) -> list[BlockSummary]:
    """The page's blocks ranked by engagement (most engaged first), each with its variants."""
    rows = day_rows(BlockRollup, start, end, device=device, segment=segment).filter(page_id=page_id)
    per_block = (rows.values("block_id")
                 .annotate(busiest=Max("visitors"), **{name: Sum(name) for name in SUMMED_FIELDS}))
    variants: dict[str, list[VariantFigures]] = {}
    for figures in block_figures(start, end, device=device, segment=segment, page_id=page_id):
        variants.setdefault(figures.block_id, []).append(figures)
    summaries = []
    for row in per_block:
        impressions = row["impressions"] or 0
        buckets = [row[f"dwell_b{i}"] or 0 for i in range(DWELL_BUCKETS)]
        hidden = _hidden(row["busiest"])
        summaries.append(BlockSummary(
            block_id=row["block_id"], hidden=hidden,
            impressions=None if hidden else impressions,
            ctr=None if hidden or not impressions else (row["clicks"] or 0) / impressions,
            engagement_rate=None if hidden or not impressions else engaged_dwells(buckets) / impressions,
            abandon_rate=None if hidden or not impressions else (row["abandons"] or 0) / impressions,
            dwell_median_s=None if hidden else quantile_from_buckets(buckets, 0.5),
            variants=sorted(variants.get(row["block_id"], []), key=lambda v: v.variant)))
    summaries.sort(key=lambda s: (s.engagement_rate is None, -(s.engagement_rate or 0), s.block_id))
    return summaries


def page_dropoff(page_id: int, start: date, end: date, *, device: str | None = None,
                 segment: str | None = None) -> PageDropoff:
    """How far down a page its views scrolled, over the days ``start`` to ``end``."""
    rows = day_rows(PageRollup, start, end, device=device, segment=segment).filter(page_id=page_id)
    sums = rows.aggregate(busiest=Max("visitors"), pageviews=Sum("pageviews"), visitors=Sum("visitors"),
                          **{f"s{m}": Sum(f"scroll_{m}") for m in SCROLL_MILESTONES})
    if _hidden(sums["busiest"]):
        return PageDropoff(page_id=page_id, hidden=True)
    views = sums["pageviews"] or 0
    return PageDropoff(page_id=page_id, hidden=False, pageviews=views, visitors=sums["visitors"] or 0,
                       reached={m: ((sums[f"s{m}"] or 0) / views if views else 0.0)
                                for m in SCROLL_MILESTONES})


@dataclass(frozen=True)
class HourFigures:
    """A page's figures for one hour, all its blocks together (the hourly rollups)."""

    start: datetime
    #: Fewer than ``ANALYTICS_MIN_VISITORS`` visitors in the hour: no figures shown.
    hidden: bool
    pageviews: int | None = None
    impressions: int | None = None
    clicks: int | None = None
    ctr: float | None = None
    abandons: int | None = None


def page_hours(page_id: int, *, device: str | None = None, segment: str | None = None,
               now: datetime | None = None) -> list[HourFigures]:
    """The page's last ``ROLLUP_HOURS`` hours, oldest first, every hour listed (an hour without
    events has zeros). An hour's visitors, for the privacy threshold, are the most of its page
    views' visitors and any one block variant's (distinct visitors do not add up)."""
    zone = timezone.get_default_timezone()
    now = timezone.localtime(now or timezone.now(), zone)
    last = now.replace(minute=0, second=0, microsecond=0).astimezone(UTC)  # instants: DST-proof
    hours = [last - timedelta(hours=k) for k in range(get_setting("ROLLUP_HOURS") - 1, -1, -1)]
    block_rows, page_rows = (_rollups(model, Period.HOUR, device, segment).filter(start__gte=hours[0], page_id=page_id)
                             for model in (BlockRollup, PageRollup))
    blocks = {row["start"]: row for row in block_rows.values("start").annotate(
        busiest=Max("visitors"), impressions=Sum("impressions"), clicks=Sum("clicks"), abandons=Sum("abandons"))}
    pages = {row["start"]: row for row in page_rows.values("start", "visitors", "pageviews")}
    found = []
    for hour in hours:
        block, page = blocks.get(hour, {}), pages.get(hour, {})
        if _hidden(max(block.get("busiest") or 0, page.get("visitors") or 0)):
            found.append(HourFigures(start=hour, hidden=True))
            continue
        impressions, clicks = block.get("impressions") or 0, block.get("clicks") or 0
        found.append(HourFigures(start=hour, hidden=False, pageviews=page.get("pageviews") or 0,
                                 impressions=impressions, clicks=clicks,
                                 ctr=clicks / impressions if impressions else None,
                                 abandons=block.get("abandons") or 0))
    return found


__all__ = ["SUMMED_FIELDS", "BlockSummary", "HourFigures", "PageDropoff", "VariantFigures", "block_figures",
           "day_range", "day_rows", "engaged_dwells", "page_blocks", "page_dropoff", "page_hours",
           "quantile_from_buckets", "variant_totals", "variant_figures"]
