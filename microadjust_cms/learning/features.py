"""Behaviour features: one vector per visitor from their events over a window.

``visitor_features`` is the one documented definition (docs/clustering.md). Over the
last ``LEARNING_WINDOW_DAYS`` (30) days of events, per visitor:

========================  ===================================================================
``visits``                visits: page views more than ``VISIT_IDLE_SECONDS`` apart start one
``pageviews_per_visit``   page views / visits
``mean_scroll_depth``     the deepest scroll milestone per page viewed, averaged (0 to 100;
                          a viewed page with no milestone counts as 0)
``mean_dwell_seconds``    dwell seconds on blocks / block impressions
``click_rate``            clicks / impressions
``abandon_rate``          blocks abandoned / impressions
``conversion_rate``       conversions / visits
``mobile_share``          share of visits from a phone or tablet
``days_since_last_visit`` days from the visitor's last event to ``now``
``affinity:<type>``       share of the visitor's content points earned by blocks of that content
                          type (impression 0.5, click 3, conversion 5, dwell 1 per 10 s up to 6
                          an event, as ``behaviour``), one column per content type
========================  ===================================================================

Rates are 0 when their denominator is. The counting is done by the database (three GROUP BY
queries) and by pandas over the page views (visits need the gaps between them), never by a
Python loop per event. ``profile_features`` builds the same vector from a live profile, for
visitors first seen after the last clustering run and for the engagement model at render.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.db.models import Count, Max, Q, Sum, Value
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from ..behaviour import AFFINITY_POINTS, DWELL_POINTS_CAP, DWELL_POINTS_PER_SECOND
from ..conf import get_setting

BASE_FEATURES: tuple[str, ...] = (
    "visits", "pageviews_per_visit", "mean_scroll_depth", "mean_dwell_seconds", "click_rate",
    "abandon_rate", "conversion_rate", "mobile_share", "days_since_last_visit",
)
AFFINITY_FEATURE_PREFIX = "affinity:"
MOBILE_DEVICES = ("mobile", "tablet")
#: Dwell above this many milliseconds earns no more affinity points in one event.
_DWELL_CAP_MS = int(DWELL_POINTS_CAP / DWELL_POINTS_PER_SECOND * 1000)


@dataclass(frozen=True)
class FeatureMatrix:
    """``values[i]`` is the feature vector of ``visitor_ids[i]``; columns follow ``names``."""

    visitor_ids: np.ndarray
    names: tuple[str, ...]
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.visitor_ids)

    @property
    def content_types(self) -> tuple[str, ...]:
        return content_types_of(self.names)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, index=pd.Index(self.visitor_ids, name="visitor_id"),
                            columns=list(self.names))


def feature_names(content_types: Iterable[str]) -> tuple[str, ...]:
    return BASE_FEATURES + tuple(AFFINITY_FEATURE_PREFIX + t for t in content_types)


def content_types_of(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(n[len(AFFINITY_FEATURE_PREFIX):] for n in names if n.startswith(AFFINITY_FEATURE_PREFIX))


def visitor_features(*, window_days: int | None = None, now: datetime | None = None,
                     content_types: Sequence[str] | None = None,
                     visitor_ids: Iterable[str] | None = None,
                     events: Any = None) -> FeatureMatrix:
    """Feature vectors of every visitor with a page view in the window (see the module doc).

    ``content_types`` fixes the affinity columns (a clustering run reuses its own); by default
    they are the ``LEARNING_MAX_CONTENT_TYPES`` content types with the most events in the window.
    ``visitor_ids`` limits the result to those visitors; ``events`` replaces the Event queryset
    (another database alias, tests).
    """
    from ..tracking.models import Event

    now = now or timezone.now()
    days = get_setting("LEARNING_WINDOW_DAYS") if window_days is None else window_days
    qs = (events if events is not None else Event.objects.all()).filter(
        occurred_at__gte=now - timedelta(days=days), occurred_at__lte=now)
    if visitor_ids is not None:
        qs = qs.filter(visitor_id__in=list(visitor_ids))

    visits = _visits(qs)
    if visits.empty:
        names = feature_names(content_types or ())
        return FeatureMatrix(np.array([], dtype=object), names, np.zeros((0, len(names))))
    counts = _counts(qs).reindex(visits.index, fill_value=0)
    scroll = _scroll_sums(qs).reindex(visits.index, fill_value=0)
    if content_types is None:
        content_types = _top_content_types(qs)
    affinity = _affinity_shares(qs, content_types).reindex(visits.index, fill_value=0.0)

    n_visits = visits["visits"].to_numpy(dtype=float)
    impressions = counts["impressions"].to_numpy(dtype=float)
    pages = np.maximum(counts["pages"].to_numpy(dtype=float), scroll["pages"].to_numpy(dtype=float))
    last_at = counts["last_at"]
    days_since = ((pd.Timestamp(now) - pd.to_datetime(last_at, utc=True)).dt.total_seconds()
                  .to_numpy(dtype=float) / 86400.0)
    columns = {
        "visits": n_visits,
        "pageviews_per_visit": _ratio(counts["pageviews"], n_visits),
        "mean_scroll_depth": _ratio(scroll["depth"], pages),
        "mean_dwell_seconds": _ratio(counts["dwell_ms"] / 1000.0, impressions),
        "click_rate": _ratio(counts["clicks"], impressions),
        "abandon_rate": _ratio(counts["abandons"], impressions),
        "conversion_rate": _ratio(counts["conversions"], n_visits),
        "mobile_share": _ratio(visits["mobile_visits"], n_visits),
        "days_since_last_visit": np.nan_to_num(np.maximum(days_since, 0.0)),
    }
    for content_type in content_types:
        columns[AFFINITY_FEATURE_PREFIX + content_type] = affinity[content_type].to_numpy(dtype=float)
    names = feature_names(content_types)
    values = np.column_stack([columns[name] for name in names]).astype(np.float64)
    return FeatureMatrix(visits.index.to_numpy(dtype=object), names, values)


def _ratio(numerator: Any, denominator: Any) -> np.ndarray:
    top = np.asarray(numerator, dtype=float)
    bottom = np.asarray(denominator, dtype=float)
    return np.divide(top, bottom, out=np.zeros_like(top), where=bottom > 0)


def _visits(qs: Any) -> pd.DataFrame:
    """Visits and visits from a phone or tablet, per visitor, from the page views' gaps."""
    rows = qs.filter(type="pageview").order_by("visitor_id", "occurred_at").values_list(
        "visitor_id", "occurred_at", "device")
    frame = pd.DataFrame.from_records(list(rows), columns=["visitor_id", "at", "device"])
    if frame.empty:
        return pd.DataFrame({"visits": [], "mobile_visits": []}, index=pd.Index([], name="visitor_id"))
    seconds = pd.to_datetime(frame["at"], utc=True).astype("int64").to_numpy() / 1e9
    visitor = frame["visitor_id"].to_numpy()
    starts = np.ones(len(frame), dtype=bool)
    starts[1:] = (visitor[1:] != visitor[:-1]) | (np.diff(seconds) > get_setting("VISIT_IDLE_SECONDS"))
    mobile = frame["device"].isin(MOBILE_DEVICES).to_numpy()
    return pd.DataFrame({"visitor_id": visitor, "visits": starts, "mobile_visits": starts & mobile}) \
        .groupby("visitor_id", sort=True).sum().astype(int)


def _counts(qs: Any) -> pd.DataFrame:
    """Event counts, dwell and distinct pages viewed per visitor: one GROUP BY."""
    rows = qs.values("visitor_id").order_by().annotate(
        pageviews=Count("id", filter=Q(type="pageview")),
        impressions=Count("id", filter=Q(type="impression")),
        clicks=Count("id", filter=Q(type="click")),
        abandons=Count("id", filter=Q(type="abandon")),
        conversions=Count("id", filter=Q(type="conversion")),
        dwell_ms=Coalesce(Sum("value", filter=Q(type="dwell")), Value(0)),
        pages=Count("page_id", filter=Q(type="pageview"), distinct=True),
        last_at=Max("occurred_at"),
    )
    frame = pd.DataFrame.from_records(list(rows), columns=[
        "visitor_id", "pageviews", "impressions", "clicks", "abandons", "conversions", "dwell_ms",
        "pages", "last_at"])
    return frame.set_index("visitor_id")


def _scroll_sums(qs: Any) -> pd.DataFrame:
    """Sum over pages of the deepest milestone reached, and how many pages, per visitor."""
    rows = qs.filter(type="scroll").values("visitor_id", "page_id").order_by().annotate(
        deepest=Max("value")).values_list("visitor_id", "deepest")
    frame = pd.DataFrame.from_records(list(rows), columns=["visitor_id", "deepest"])
    if frame.empty:
        return pd.DataFrame({"depth": [], "pages": []}, index=pd.Index([], name="visitor_id"))
    grouped = frame.groupby("visitor_id")["deepest"]
    return pd.DataFrame({"depth": grouped.sum().astype(float), "pages": grouped.count()})


def _affinity_points(qs: Any) -> Any:
    return qs.exclude(content_type="").values("visitor_id", "content_type").order_by().annotate(
        impressions=Count("id", filter=Q(type="impression")),
        clicks=Count("id", filter=Q(type="click")),
        conversions=Count("id", filter=Q(type="conversion")),
        dwell_ms=Coalesce(Sum(Least("value", Value(_DWELL_CAP_MS)), filter=Q(type="dwell")), Value(0)),
    ).values_list("visitor_id", "content_type", "impressions", "clicks", "conversions", "dwell_ms")


def _top_content_types(qs: Any) -> tuple[str, ...]:
    rows = (qs.exclude(content_type="").values("content_type").order_by()
            .annotate(n=Count("id")).order_by("-n", "content_type")
            .values_list("content_type", flat=True)[:get_setting("LEARNING_MAX_CONTENT_TYPES")])
    return tuple(sorted(rows))


def _affinity_shares(qs: Any, content_types: Sequence[str]) -> pd.DataFrame:
    """Per visitor, each content type's share of the visitor's content points."""
    frame = pd.DataFrame.from_records(list(_affinity_points(qs)), columns=[
        "visitor_id", "content_type", "impressions", "clicks", "conversions", "dwell_ms"])
    frame = frame[frame["content_type"].isin(content_types)]
    if frame.empty:
        return pd.DataFrame(columns=list(content_types), dtype=float)
    frame["points"] = (frame["impressions"] * AFFINITY_POINTS["impression"]
                       + frame["clicks"] * AFFINITY_POINTS["click"]
                       + frame["conversions"] * AFFINITY_POINTS["conversion"]
                       + frame["dwell_ms"] / 1000.0 * DWELL_POINTS_PER_SECOND)
    table = frame.pivot_table(index="visitor_id", columns="content_type", values="points",
                              aggfunc="sum", fill_value=0.0)
    table = table.reindex(columns=list(content_types), fill_value=0.0)
    totals = table.sum(axis=1).replace(0.0, np.nan)
    return table.div(totals, axis=0).fillna(0.0)


def profile_features(profile: Any, names: Sequence[str], *, device: str, now: float) -> np.ndarray:
    """The feature vector (columns ``names``) from a live profile, as far as it knows them.

    The profile keeps visits, page views, conversions, decayed content affinity and the current
    page's scroll depth, not lifetime impressions, clicks or dwell: features it cannot tell are
    NaN, and callers replace them with the population mean of the run they compare against
    (a standardized 0), so they neither pull a visitor toward nor away from any cluster.
    ``device`` is this request's device class; ``now`` is epoch seconds.
    """
    visits = max(int(profile.visits), 1)
    affinity: Mapping[str, float] = profile.affinity or {}
    types = content_types_of(names)
    total = sum(affinity.get(t, 0.0) for t in types)
    known = {
        "visits": float(profile.visits),
        "pageviews_per_visit": profile.total_pageviews / visits,
        "mean_scroll_depth": float(profile.page_scroll) if profile.page_scroll else np.nan,
        "conversion_rate": profile.conversions / visits,
        "mobile_share": 1.0 if device in MOBILE_DEVICES else 0.0,
        "days_since_last_visit": max(now - profile.last_seen, 0.0) / 86400.0 if profile.last_seen else 0.0,
    }
    for content_type in types:
        known[AFFINITY_FEATURE_PREFIX + content_type] = (affinity.get(content_type, 0.0) / total
                                                         if total > 0 else np.nan)
    return np.array([known.get(name, np.nan) for name in names], dtype=np.float64)


__all__ = ["BASE_FEATURES", "FeatureMatrix", "feature_names", "profile_features", "visitor_features"]
