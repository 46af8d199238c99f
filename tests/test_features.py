"""Behaviour features from stored events (``learning.features``), checked against hand counts."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from microadjust_cms.learning.features import BASE_FEATURES, profile_features, visitor_features
from microadjust_cms.tracking.models import Event
from microadjust_cms.visitor.stores import Profile

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


def event(visitor, kind, minutes_ago, **fields):
    return Event(visitor_id=visitor, type=kind, occurred_at=NOW - timedelta(minutes=minutes_ago),
                 **fields)


def reader_and_skimmer():
    """A reader on a desktop with two visits (two days apart) and a skimmer on a phone."""
    day = 24 * 60
    return [
        # reader, visit 1 (two days ago): two pages, deep scroll, long dwell, a click
        event("reader", "pageview", 2 * day + 10, page_id=1, device="desktop"),
        event("reader", "impression", 2 * day + 9, page_id=1, block_id="b1", content_type="article"),
        event("reader", "dwell", 2 * day + 8, page_id=1, block_id="b1", value=40000,
              content_type="article"),
        event("reader", "scroll", 2 * day + 8, page_id=1, value=50),
        event("reader", "scroll", 2 * day + 7, page_id=1, value=100),
        event("reader", "click", 2 * day + 6, page_id=1, block_id="b1", content_type="article"),
        event("reader", "pageview", 2 * day + 5, page_id=2, device="desktop"),
        event("reader", "scroll", 2 * day + 4, page_id=2, value=75),
        # reader, visit 2 (an hour ago): the first page again, a video impression, a conversion
        event("reader", "pageview", 60, page_id=1, device="mobile"),
        event("reader", "impression", 59, page_id=1, block_id="b2", content_type="video"),
        event("reader", "conversion", 58, page_id=1, name="signup"),
        # skimmer: one visit, one page, shallow scroll, abandons, no dwell
        event("skimmer", "pageview", 30, page_id=1, device="mobile"),
        event("skimmer", "impression", 29, page_id=1, block_id="b1", content_type="article"),
        event("skimmer", "impression", 29, page_id=1, block_id="b2", content_type="video"),
        event("skimmer", "abandon", 28, page_id=1, block_id="b1", content_type="article"),
        event("skimmer", "scroll", 28, page_id=1, value=25),
        # outside the 30-day window: ignored
        event("old", "pageview", 40 * day, page_id=1, device="desktop"),
    ]


def test_features_match_hand_counts():
    Event.objects.bulk_create(reader_and_skimmer())
    matrix = visitor_features(now=NOW)
    frame = matrix.to_frame()
    assert list(frame.index) == ["reader", "skimmer"]
    assert matrix.names == (*BASE_FEATURES, "affinity:article", "affinity:video")
    reader, skimmer = frame.loc["reader"], frame.loc["skimmer"]
    assert reader["visits"] == 2 and skimmer["visits"] == 1
    assert reader["pageviews_per_visit"] == 1.5
    # deepest per page: page 1 → 100, page 2 → 75 (two distinct pages viewed)
    assert reader["mean_scroll_depth"] == 87.5 and skimmer["mean_scroll_depth"] == 25
    assert reader["mean_dwell_seconds"] == 20.0  # 40 s over two impressions
    assert reader["click_rate"] == 0.5 and skimmer["click_rate"] == 0
    assert reader["abandon_rate"] == 0 and skimmer["abandon_rate"] == 0.5
    assert reader["conversion_rate"] == 0.5
    assert reader["mobile_share"] == 0.5 and skimmer["mobile_share"] == 1.0
    assert reader["days_since_last_visit"] == pytest.approx(58 / 1440)
    # reader: article 0.5 + 4 (dwell, capped at 6) + 3 = 7.5; video 0.5 + 5 (conversion has no
    # content type, so none) = 0.5 → shares 7.5/8 and 0.5/8
    assert reader["affinity:article"] == pytest.approx(7.5 / 8)
    assert reader["affinity:video"] == pytest.approx(0.5 / 8)
    assert skimmer["affinity:article"] == skimmer["affinity:video"] == 0.5


def test_window_visitor_filter_and_fixed_content_types():
    Event.objects.bulk_create(reader_and_skimmer())
    assert list(visitor_features(now=NOW, window_days=50).visitor_ids) == ["old", "reader", "skimmer"]
    only = visitor_features(now=NOW, visitor_ids=["skimmer"], content_types=["video", "podcast"])
    assert list(only.visitor_ids) == ["skimmer"]
    assert only.names[-2:] == ("affinity:video", "affinity:podcast")
    assert only.values[0, -2:].tolist() == [1.0, 0.0]  # the only fixed type it touched


def test_no_events_give_an_empty_matrix():
    matrix = visitor_features(now=NOW)
    assert len(matrix) == 0 and matrix.values.shape == (0, len(BASE_FEATURES))


def test_a_visit_starts_after_the_idle_gap(settings):
    settings.MICROADJUST_VISIT_IDLE_SECONDS = 30 * 60
    Event.objects.bulk_create([event("v", "pageview", m, page_id=1, device="desktop")
                               for m in (100, 80, 60, 10, 0)])  # gaps 20, 20, 50, 10 minutes
    assert visitor_features(now=NOW).to_frame().loc["v", "visits"] == 2


def test_profile_features_leave_unknowns_as_nan():
    names = (*BASE_FEATURES, "affinity:article", "affinity:video")
    profile = Profile(visits=4, total_pageviews=10, conversions=1, last_seen=1000.0,
                      affinity={"article": 3.0, "video": 1.0, "howto": 9.0})
    vector = dict(zip(names, profile_features(profile, names, device="tablet", now=1000.0 + 86400), strict=True))
    assert vector["visits"] == 4 and vector["pageviews_per_visit"] == 2.5
    assert vector["conversion_rate"] == 0.25 and vector["mobile_share"] == 1.0
    assert vector["days_since_last_visit"] == 1.0
    assert vector["affinity:article"] == 0.75 and vector["affinity:video"] == 0.25
    assert all(np.isnan(vector[n]) for n in ("mean_dwell_seconds", "click_rate", "abandon_rate",
                                              "mean_scroll_depth"))
