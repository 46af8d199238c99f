"""Editor figures read from the rollups: sums over days, dwell quantiles from the histogram,
Wilson intervals, and no group of fewer than ANALYTICS_MIN_VISITORS shown."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from django.utils import timezone

from microadjust_cms.analytics import figures, rollups
from microadjust_cms.analytics.models import DWELL_BUCKETS
from microadjust_cms.experiments.stats_core import wilson_interval
from microadjust_cms.tracking.models import Event

pytestmark = pytest.mark.django_db
ZONE = timezone.get_default_timezone()
DAY1 = datetime(2026, 6, 8, 10, tzinfo=ZONE)


def visitors(n: int, prefix: str) -> list[str]:
    return [f"{prefix}{i:031x}"[:32] for i in range(n)]


def traffic(day: datetime, variant: str, people: list[str], clicks: int, dwell_ms: int = 0,
            device: str = "desktop") -> list[Event]:
    common = {"page_id": 3, "path": "/", "block_id": "hero", "variant": variant, "device": device}
    events = [Event(type="impression", occurred_at=day, visitor_id=v, **common) for v in people]
    events += [Event(type="click", occurred_at=day, visitor_id=v, **common) for v in people[:clicks]]
    if dwell_ms:
        events += [Event(type="dwell", occurred_at=day, visitor_id=v, value=dwell_ms, **common)
                   for v in people]
    return events


def test_sums_over_days_with_rates_and_intervals():
    v1 = visitors(20, "a")
    Event.objects.bulk_create(traffic(DAY1, "v1", v1, clicks=4, dwell_ms=4_000)
                              + traffic(DAY1 + timedelta(days=1), "v1", v1, clicks=6, dwell_ms=12_000)
                              + [Event(type="conversion", occurred_at=DAY1 + timedelta(hours=1),
                                       visitor_id=v, page_id=3, path="/", device="desktop")
                                 for v in v1[:5]])
    rollups.refresh(now=DAY1 + timedelta(days=2))
    (row,) = figures.block_figures(date(2026, 6, 8), date(2026, 6, 9))
    assert not row.hidden
    assert (row.impressions, row.visitors, row.clicks) == (40, 40, 10)  # visitor-days
    assert row.ctr == pytest.approx(0.25)
    assert row.ctr_interval == pytest.approx(wilson_interval(10, 40))
    assert row.converters == 5 and row.conversion_rate == pytest.approx(5 / 40)
    # Half the dwells in 3-5 s, half in 10-15 s: the median is the top of the first half.
    assert 3.0 <= row.dwell_median_s <= 5.0
    assert 10.0 <= row.dwell_p90_s <= 15.0
    (first_day,) = figures.block_figures(date(2026, 6, 8), date(2026, 6, 8))
    assert first_day.clicks == 4


def test_a_group_under_the_minimum_is_hidden_whatever_the_range(settings):
    settings.MICROADJUST_ANALYTICS_MIN_VISITORS = 10
    few = visitors(4, "b")
    # 4 visitors a day on five days: 20 visitor-days, but never 10 people: hidden.
    Event.objects.bulk_create([e for d in range(5)
                               for e in traffic(DAY1 + timedelta(days=d), "v2", few, clicks=1)]
                              + traffic(DAY1, "v1", visitors(12, "c"), clicks=3))
    rollups.refresh(now=DAY1 + timedelta(days=6))
    shown = {row.variant: row for row in figures.block_figures(date(2026, 6, 1), date(2026, 6, 30))}
    assert shown["v2"].hidden and shown["v2"].impressions is None and shown["v2"].ctr is None
    assert not shown["v1"].hidden and shown["v1"].clicks == 3


def test_filters_by_device_and_page():
    Event.objects.bulk_create(traffic(DAY1, "v1", visitors(10, "d"), clicks=2, device="mobile")
                              + traffic(DAY1, "v1", visitors(10, "e"), clicks=5, device="desktop"))
    rollups.refresh(now=DAY1 + timedelta(days=1))
    day = date(2026, 6, 8)
    assert [r.clicks for r in figures.block_figures(day, day)] == [7]
    assert [r.clicks for r in figures.block_figures(day, day, device="mobile")] == [2]
    assert figures.block_figures(day, day, page_id=99) == []


def test_page_dropoff_shares():
    people = visitors(10, "f")
    common = {"page_id": 3, "path": "/", "device": "desktop"}
    events = [Event(type="pageview", occurred_at=DAY1, visitor_id=v, **common) for v in people]
    for depth, reached in ((25, 10), (50, 8), (75, 5), (90, 2), (100, 1)):
        events += [Event(type="scroll", occurred_at=DAY1, visitor_id=v, value=depth, **common)
                   for v in people[:reached]]
    Event.objects.bulk_create(events)
    rollups.refresh(now=DAY1 + timedelta(days=1))
    curve = figures.page_dropoff(3, date(2026, 6, 8), date(2026, 6, 8))
    assert (curve.pageviews, curve.visitors) == (10, 10)
    assert curve.reached == {25: 1.0, 50: 0.8, 75: 0.5, 90: 0.2, 100: 0.1}
    assert figures.page_dropoff(3, date(2026, 6, 9), date(2026, 6, 9)).hidden


def test_quantiles_from_buckets():
    counts = [0] * DWELL_BUCKETS
    assert figures.quantile_from_buckets(counts, 0.5) is None
    counts[0] = 10  # all under a second
    assert figures.quantile_from_buckets(counts, 0.5) == pytest.approx(0.5)
    counts = [0] * DWELL_BUCKETS
    counts[-1] = 3  # all past the last edge: its lower edge
    assert figures.quantile_from_buckets(counts, 0.9) == 1800.0


def test_figures_for_one_segment_and_the_hours_of_a_page():
    from microadjust_cms.segments.models import Segment

    Segment.objects.create(name="Deal", slug="deal", condition={"signal": "device", "op": "eq", "value": "mobile"})
    now = DAY1 + timedelta(hours=3, minutes=20)
    stamped = traffic(DAY1, "v1", visitors(12, "s"), clicks=6)
    for e in stamped:
        e.segments = "deal"
    Event.objects.bulk_create(stamped + traffic(DAY1, "v1", visitors(30, "u"), clicks=0)
                              + traffic(DAY1 + timedelta(hours=2), "v1", visitors(3, "w"), clicks=1))
    rollups.refresh(now=now)
    (everyone,) = figures.block_figures(date(2026, 6, 8), date(2026, 6, 8))
    (deal,) = figures.block_figures(date(2026, 6, 8), date(2026, 6, 8), segment="deal")
    assert (everyone.impressions, everyone.clicks) == (45, 7)
    assert (deal.impressions, deal.clicks, deal.ctr) == (12, 6, 0.5)
    assert figures.block_figures(date(2026, 6, 8), date(2026, 6, 8), segment="nobody") == []

    hours = figures.page_hours(3, now=now)
    assert len(hours) == 48  # ROLLUP_HOURS, oldest first, every hour listed
    assert hours[-1].start == now.replace(minute=0) and hours[0].start == now.replace(minute=0) - timedelta(hours=47)
    by_hour = {h.start: h for h in hours}
    ten = by_hour[DAY1]
    assert not ten.hidden and (ten.impressions, ten.clicks) == (42, 6)
    assert by_hour[DAY1 + timedelta(hours=2)].hidden  # 3 visitors: under the threshold
    assert by_hour[DAY1 + timedelta(hours=1)].hidden  # nobody at all is fewer than 10 too
    (deal_hour,) = [h for h in figures.page_hours(3, segment="deal", now=now) if not h.hidden]
    assert (deal_hour.start, deal_hour.impressions, deal_hour.ctr) == (DAY1, 12, 0.5)
