"""Analytics rollups: rebuilt from the event table, exact, and current after late writes."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from microadjust_cms.analytics import rollups
from microadjust_cms.analytics.models import ALL_DEVICES, BlockRollup, PageRollup, Period, RollupState
from microadjust_cms.tracking.hooks import events_changed
from microadjust_cms.tracking.models import Event

pytestmark = pytest.mark.django_db
LONDON = timezone.get_default_timezone()
#: Noon in the site's time zone, a Wednesday: days and hours are unambiguous.
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=LONDON)


def event(kind: str, at: datetime, visitor: str = "a" * 32, **fields) -> Event:
    defaults = {"page_id": 7, "path": "/", "device": "desktop"}
    if kind not in ("pageview", "scroll", "conversion"):
        defaults |= {"block_id": "hero", "variant": "v1"}
    return Event(type=kind, occurred_at=at, visitor_id=visitor, **(defaults | fields))


def store(*events: Event) -> None:
    Event.objects.bulk_create(events)


def day_row(day: datetime, **key) -> BlockRollup:
    key = {"page_id": 7, "block_id": "hero", "variant": "v1", "device": "desktop", "segment": ""} | key
    return BlockRollup.objects.get(period=Period.DAY, start=day, **key)


def test_block_figures_of_a_day_are_counted_exactly():
    morning = NOW.replace(hour=9)
    store(
        event("impression", morning, "a" * 32), event("impression", morning, "a" * 32),
        event("impression", morning, "b" * 32), event("impression", morning, "c" * 32),
        event("click", morning + timedelta(minutes=1), "a" * 32),
        event("abandon", morning, "c" * 32, value=800),
        event("dwell", morning, "a" * 32, value=500),      # bucket 0 (< 1 s)
        event("dwell", morning, "b" * 32, value=4_000),    # bucket 3 (3 to 5 s)
        event("dwell", morning, "b" * 32, value=2_000_000),  # the open last bucket
        # a converts after the impression; b converted before it; c converts the next day
        event("conversion", morning + timedelta(hours=1), "a" * 32, name="signup"),
        event("conversion", morning - timedelta(hours=1), "b" * 32, name="signup"),
        event("conversion", morning + timedelta(days=1), "c" * 32, name="signup"),
        event("impression", morning, "d" * 32, variant="v2", device="mobile"),
    )
    rollups.refresh(now=NOW)
    row = day_row(NOW.replace(hour=0))
    assert (row.impressions, row.visitors, row.clicks, row.abandons) == (4, 3, 1, 1)
    assert (row.dwells, row.dwell_ms) == (3, 2_004_500)
    buckets = [getattr(row, f"dwell_b{i}") for i in range(19)]
    assert buckets[0] == 1 and buckets[3] == 1 and buckets[18] == 1 and sum(buckets) == 3
    assert row.converters == 1
    other = day_row(NOW.replace(hour=0), variant="v2", device="mobile")
    assert (other.impressions, other.visitors, other.clicks) == (1, 1, 0)


def test_page_views_and_scroll_milestones_per_day():
    day = NOW.replace(hour=8)
    store(event("pageview", day, "a" * 32), event("pageview", day, "a" * 32),
          event("pageview", day, "b" * 32),
          *[event("scroll", day, "a" * 32, value=m) for m in (25, 50, 75)],
          *[event("scroll", day, "b" * 32, value=m) for m in (25, 50, 75, 90, 100)])
    rollups.refresh(now=NOW)
    row = PageRollup.objects.get(period=Period.DAY, start=NOW.replace(hour=0), page_id=7,
                                 device="desktop")
    assert (row.pageviews, row.visitors) == (3, 2)
    assert [row.scroll_25, row.scroll_50, row.scroll_75, row.scroll_90, row.scroll_100] == [2, 2, 2, 1, 1]


def test_hours_are_kept_for_the_last_48_and_dropped_after():
    store(event("impression", NOW - timedelta(hours=3)), event("impression", NOW - timedelta(hours=2)),
          event("impression", NOW - timedelta(hours=2)))
    rollups.refresh(now=NOW)
    hours = {r.start: r.impressions for r in BlockRollup.objects.filter(period=Period.HOUR, device="all")}
    assert hours == {NOW - timedelta(hours=3): 1, NOW - timedelta(hours=2): 2}
    rollups.refresh(now=NOW + timedelta(hours=50))
    assert not BlockRollup.objects.filter(period=Period.HOUR, start__lt=NOW).exists()
    assert day_row(NOW.replace(hour=0)).impressions == 3  # days stay


def test_a_refresh_rebuilds_recent_days_and_what_writers_announced():
    store(event("impression", NOW - timedelta(days=5)))
    rollups.refresh(now=NOW)  # the first refresh starts at the earliest event
    assert day_row((NOW - timedelta(days=5)).replace(hour=0)).impressions == 1
    # A late event five days back, written without saying so: not rebuilt (the refresh only
    # looks back a day from its last run, which covers what the database sink stores) ...
    store(event("impression", NOW - timedelta(days=5), "b" * 32))
    store(event("impression", NOW + timedelta(hours=1), "c" * 32))
    rollups.refresh(now=NOW + timedelta(hours=2))
    assert day_row((NOW - timedelta(days=5)).replace(hour=0)).impressions == 1
    assert day_row(NOW.replace(hour=0)).impressions == 1
    # ... and rebuilt once a writer announces it, as the event loader does in its transaction.
    with transaction.atomic():
        events_changed.send(None, earliest=NOW - timedelta(days=5))
    assert RollupState.objects.get().dirty_from == NOW - timedelta(days=5)
    rollups.refresh(now=NOW + timedelta(hours=3))
    assert day_row((NOW - timedelta(days=5)).replace(hour=0)).impressions == 2
    assert RollupState.objects.get().dirty_from is None


def test_an_earlier_announcement_wins_and_a_later_one_keeps_it():
    rollups.mark_dirty(NOW - timedelta(days=2))
    rollups.mark_dirty(NOW - timedelta(days=1))
    rollups.mark_dirty(NOW - timedelta(days=3))
    assert RollupState.objects.get().dirty_from == NOW - timedelta(days=3)


def test_a_failed_refresh_leaves_its_days_to_the_next(monkeypatch):
    store(event("impression", NOW))
    monkeypatch.setattr(rollups, "_block_query", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        rollups.refresh(now=NOW)
    assert RollupState.objects.get().dirty_from == NOW.replace(hour=0)
    monkeypatch.undo()
    rollups.refresh(now=NOW + timedelta(days=3))  # later: only the announcement covers NOW
    assert day_row(NOW.replace(hour=0)).impressions == 1


def test_the_command_refreshes_and_rebuilds_from_a_day(monkeypatch):
    store(event("impression", timezone.now() - timedelta(days=9)))
    out = io.StringIO()
    call_command("microadjust_rollup", stdout=out)
    assert "block" in out.getvalue() and BlockRollup.objects.count() == 2  # desktop, all devices
    BlockRollup.objects.all().delete()
    call_command("microadjust_rollup", stdout=out)  # nothing announced: the old day stays gone
    assert BlockRollup.objects.count() == 0
    day = (timezone.now() - timedelta(days=10)).strftime("%Y-%m-%d")
    call_command("microadjust_rollup", "--from", day, stdout=out)
    assert BlockRollup.objects.count() == 2
    with pytest.raises(Exception, match="YYYY-MM-DD"):
        call_command("microadjust_rollup", "--from", "last week", stdout=out)


def test_rows_for_all_devices_count_a_visitor_on_two_devices_once():
    store(event("impression", NOW, "a" * 32, device="mobile"), event("impression", NOW, "a" * 32),
          event("impression", NOW, "b" * 32))
    rollups.refresh(now=NOW)
    day = NOW.replace(hour=0)
    assert (day_row(day, device="mobile").visitors, day_row(day).visitors) == (1, 2)
    both = day_row(day, device=ALL_DEVICES)
    assert (both.impressions, both.visitors) == (3, 2)


def test_hours_follow_the_site_clock_in_a_zone_half_an_hour_off_utc(settings):
    settings.TIME_ZONE = "Asia/Kolkata"  # UTC+5:30: local hours start at :30 UTC
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Asia/Kolkata")
    now = datetime(2026, 6, 10, 12, 10, tzinfo=zone)
    store(event("impression", now - timedelta(minutes=50)), event("impression", now - timedelta(minutes=5)))
    rollups.refresh(now=now)
    rollups.refresh(now=now + timedelta(minutes=20))  # rebuilt again: replaces, never duplicates
    hours = {r.start.astimezone(zone).strftime("%H:%M"): r.impressions
             for r in BlockRollup.objects.filter(period=Period.HOUR, device="all")}
    assert hours == {"11:00": 1, "12:00": 1}


def test_segment_rows_count_the_events_stamped_with_each_known_segment():
    """Per segment: only events whose stamp holds the slug as a whole word ("dealer" is not
    "deal"); a slug naming no segment or cluster (forged, or deleted) gets no rows; the rows for
    all visitors count every event; conversions count whatever their own stamp."""
    from microadjust_cms.learning.models import Cluster
    from microadjust_cms.segments.models import Segment

    Segment.objects.create(name="Deal", slug="deal", condition={"signal": "device", "op": "eq", "value": "mobile"})
    Cluster.objects.create(number=1, slug="cluster-1", name="Readers")
    morning = NOW.replace(hour=9)
    a, b, c, d = "a" * 32, "b" * 32, "c" * 32, "d" * 32
    store(event("impression", morning, a, segments="cluster-1 deal"),
          event("click", morning, a, segments="cluster-1 deal"),
          event("impression", morning, b, segments="deal"),
          event("impression", morning, c),
          event("impression", morning, d, segments="dealer forged"),
          event("conversion", morning + timedelta(minutes=5), a, name="signup"),  # unstamped
          event("pageview", morning, a, segments="cluster-1 deal"), event("pageview", morning, c))
    rollups.refresh(now=NOW)
    day = NOW.replace(hour=0)
    everyone = day_row(day, device=ALL_DEVICES)
    assert (everyone.impressions, everyone.visitors, everyone.clicks) == (4, 4, 1)
    deal = day_row(day, device=ALL_DEVICES, segment="deal")
    assert (deal.impressions, deal.visitors, deal.clicks, deal.converters) == (2, 2, 1, 1)
    cluster = day_row(day, segment="cluster-1")
    assert (cluster.impressions, cluster.visitors, cluster.converters) == (1, 1, 1)
    assert set(BlockRollup.objects.values_list("segment", flat=True)) == {"", "deal", "cluster-1"}
    pages = dict(PageRollup.objects.filter(period=Period.DAY, device=ALL_DEVICES)
                 .values_list("segment", "pageviews"))
    assert pages == {"": 2, "deal": 1, "cluster-1": 1}
