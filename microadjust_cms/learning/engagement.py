"""The engagement model: which block impressions lead to a click or a long dwell.

Training set (``training_set``): every block impression of the last ``LEARNING_WINDOW_DAYS``.
Its label is 1 when the same visitor clicked that block, or dwelt on it at least
``ENGAGEMENT_DWELL_SECONDS`` in total (the tracker sends dwell in slices, so slices are summed),
within ``ENGAGEMENT_VISIT_SECONDS`` of the impression (the same visit). Features: the visitor's
behaviour vector as it was before the impression (``features.visitor_features`` at the latest
of ``ENGAGEMENT_FEATURE_SNAPSHOTS`` cut points before it, limited to the columns a live profile
can tell, so training and scoring see the same inputs), then the block's content type (a
categorical), one 0/1 column per frequent tag, and its position.

``train`` fits a HistGradientBoostingClassifier on the earlier impressions, measures AUC and log
loss on the latest ``ENGAGEMENT_HOLDOUT_SHARE`` of them, and saves an ``EngagementModel`` row;
the model is activated only when the data is thick enough and the AUC is defined. What is
measured is what is served: the held-out part is not refitted in.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from ..conf import get_setting
from ..visitor.stores import Profile
from . import Progress
from .features import content_types_of, feature_names, profile_features, visitor_features

if TYPE_CHECKING:
    from .models import EngagementModel

CONTENT_TYPE_FEATURE = "block:content_type"
POSITION_FEATURE = "block:position"
TAG_FEATURE_PREFIX = "tag:"


@dataclass(frozen=True)
class Layout:
    """How a feature row is laid out: visitor columns, then content type, tags, position."""

    visitor_features: tuple[str, ...]
    content_types: tuple[str, ...]
    tags: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.visitor_features, CONTENT_TYPE_FEATURE,
                *(TAG_FEATURE_PREFIX + t for t in self.tags), POSITION_FEATURE)

    @property
    def categorical(self) -> np.ndarray:
        mask = np.zeros(len(self.names), dtype=bool)
        mask[len(self.visitor_features)] = bool(self.content_types)
        return mask

    def to_json(self) -> dict[str, list[str]]:
        return {"visitor_features": list(self.visitor_features),
                "content_types": list(self.content_types), "tags": list(self.tags)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Layout:
        return cls(tuple(data.get("visitor_features", ())), tuple(data.get("content_types", ())),
                   tuple(data.get("tags", ())))

    def block_row(self, content_type: str, tags: Sequence[str] | str,
                  position: int | None) -> np.ndarray:
        """The block part of a feature row (content type code, tag flags, position)."""
        tag_set = set(tags.split() if isinstance(tags, str) else tags)
        code = self.content_types.index(content_type) if content_type in self.content_types else np.nan
        return np.array([code, *(1.0 if t in tag_set else 0.0 for t in self.tags),
                         np.nan if position is None else float(position)], dtype=np.float64)


def live_columns(names: Sequence[str]) -> tuple[str, ...]:
    """The visitor features a live profile can tell (``profile_features`` leaves the others NaN:
    lifetime clicks, dwell...). Training on the rest would teach the model inputs it never sees
    at render, where they are always missing."""
    types = content_types_of(names)
    rich = Profile(visits=2, visit_pageviews=1, total_pageviews=3, page_views=1, last_seen=1.0,
                   page_scroll=50, affinity={t: 1.0 for t in types}, conversions=1)
    vector = profile_features(rich, names, device="desktop", now=2.0)
    return tuple(name for name, value in zip(names, vector, strict=True) if not np.isnan(value))


def _ms(column: pd.Series) -> np.ndarray:
    return (pd.to_datetime(column, utc=True).astype("int64") // 1_000_000).to_numpy(dtype=np.int64)


def label_impressions(impressions: pd.DataFrame, engagements: pd.DataFrame, *,
                      dwell_ms: int, visit_ms: int) -> np.ndarray:
    """1 for each impression (``visitor_id``, ``block_id``, ``occurred_at``) followed, or
    preceded, within ``visit_ms`` by a click of the same visitor on the same block, or by dwell
    slices summing to ``dwell_ms`` or more; else 0.

    ``engagements`` has ``visitor_id``, ``block_id``, ``occurred_at``, ``type`` (click or dwell)
    and ``value`` (dwell ms). Vectorized: each (visitor, block) pair gets an integer code, events
    sort by (code, time) on one int64 key, and a time range is two ``searchsorted`` calls over
    prefix sums of clicks and dwell. No Python loop per event.
    """
    n = len(impressions)
    if n == 0 or len(engagements) == 0:
        return np.zeros(n, dtype=np.int8)
    keys = pd.concat([impressions[["visitor_id", "block_id"]], engagements[["visitor_id", "block_id"]]],
                     ignore_index=True)
    codes = keys.groupby(["visitor_id", "block_id"], sort=False).ngroup().to_numpy(dtype=np.int64)
    imp_code, eng_code = codes[:n], codes[n:]
    imp_t, eng_t = _ms(impressions["occurred_at"]), _ms(engagements["occurred_at"])
    origin = min(imp_t.min(), eng_t.min())
    imp_t, eng_t = imp_t - origin, eng_t - origin
    span = int(max(imp_t.max(), eng_t.max())) + 2 * visit_ms + 1
    eng_key = eng_code * span + eng_t
    order = np.argsort(eng_key, kind="stable")
    eng_key = eng_key[order]
    clicks = (engagements["type"].to_numpy() == "click")[order]
    values = pd.to_numeric(engagements["value"], errors="coerce").fillna(0).to_numpy(dtype=np.float64)
    dwell = np.where(engagements["type"].to_numpy() == "dwell", values, 0.0)[order]
    click_sums = np.concatenate([[0], np.cumsum(clicks, dtype=np.int64)])
    dwell_sums = np.concatenate([[0.0], np.cumsum(dwell)])
    low = np.searchsorted(eng_key, imp_code * span + imp_t - visit_ms, side="left")
    high = np.searchsorted(eng_key, imp_code * span + imp_t + visit_ms, side="right")
    clicked = click_sums[high] - click_sums[low] > 0
    dwelt = dwell_sums[high] - dwell_sums[low] >= dwell_ms
    return (clicked | dwelt).astype(np.int8)


@dataclass
class TrainingSet:
    """Rows in time order: ``X`` (columns ``layout.names``), labels ``y``, impression times."""

    layout: Layout
    X: np.ndarray
    y: np.ndarray
    occurred_at: np.ndarray


def training_set(*, now: datetime | None = None, events: Any = None) -> TrainingSet:
    """Impressions of the window with their labels and features (see the module docstring)."""
    from ..tracking.models import Event

    now = now or timezone.now()
    days = get_setting("LEARNING_WINDOW_DAYS")
    visit_ms = int(get_setting("ENGAGEMENT_VISIT_SECONDS") * 1000)
    start = now - timedelta(days=days)
    qs = events if events is not None else Event.objects.all()
    impressions = pd.DataFrame.from_records(list(
        qs.filter(type="impression", occurred_at__gte=start, occurred_at__lte=now).exclude(block_id="")
        .order_by("occurred_at", "id")
        .values_list("visitor_id", "block_id", "occurred_at", "content_type", "tags", "position")),
        columns=["visitor_id", "block_id", "occurred_at", "content_type", "tags", "position"])
    engagements = pd.DataFrame.from_records(list(
        qs.filter(type__in=("click", "dwell"), occurred_at__gte=start - timedelta(milliseconds=visit_ms),
                  occurred_at__lte=now + timedelta(milliseconds=visit_ms)).exclude(block_id="")
        .values_list("visitor_id", "block_id", "occurred_at", "type", "value")),
        columns=["visitor_id", "block_id", "occurred_at", "type", "value"])
    y = label_impressions(impressions, engagements,
                          dwell_ms=int(get_setting("ENGAGEMENT_DWELL_SECONDS") * 1000), visit_ms=visit_ms)

    content_types = tuple(impressions.loc[impressions["content_type"] != "", "content_type"]
                          .value_counts().index[:min(get_setting("LEARNING_MAX_CONTENT_TYPES"), 250)])
    content_types = tuple(sorted(content_types))
    tag_dummies = impressions["tags"].str.get_dummies(sep=" ")
    tags = tuple(tag_dummies.sum().sort_values(ascending=False, kind="stable")
                 .index[:get_setting("ENGAGEMENT_MAX_TAGS")])
    visitor_columns = live_columns(feature_names(content_types))
    layout = Layout(visitor_columns, content_types, tuple(sorted(tags)))
    visitor_part = _visitor_part(impressions, layout, start=start, now=now, days=days, events=events)
    type_codes = pd.Categorical(impressions["content_type"], categories=list(layout.content_types)).codes
    type_part = np.where(type_codes >= 0, type_codes, np.nan).astype(np.float64)[:, None]
    tag_part = (tag_dummies.reindex(columns=list(layout.tags), fill_value=0).to_numpy(dtype=np.float64)
                .reshape(len(impressions), len(layout.tags)))
    position = pd.to_numeric(impressions["position"], errors="coerce").to_numpy(dtype=np.float64)[:, None]
    X = np.hstack([visitor_part, type_part, tag_part, position])
    return TrainingSet(layout, X, y, impressions["occurred_at"].to_numpy())


def _visitor_part(impressions: pd.DataFrame, layout: Layout, *, start: datetime, now: datetime,
                  days: int, events: Any) -> np.ndarray:
    """Each impression's visitor features as they were before it: from the snapshot taken at the
    latest of ``ENGAGEMENT_FEATURE_SNAPSHOTS`` evenly spaced cut points (the first at the window's
    start) not after the impression, over the ``days`` before that cut. Features computed over
    the whole window would include the impression's own outcome (a click adds content affinity)
    and every later visit, which the profile at render never holds: the held-out scores would
    flatter the model."""
    names = feature_names(layout.content_types)
    column_index = [names.index(name) for name in layout.visitor_features]
    part = np.full((len(impressions), len(layout.visitor_features)), np.nan)
    if impressions.empty:
        return part
    count = max(int(get_setting("ENGAGEMENT_FEATURE_SNAPSHOTS")), 1)
    cuts = [start + (now - start) * i / count for i in range(count)]
    at = pd.to_datetime(impressions["occurred_at"], utc=True).astype("int64").to_numpy()
    cut_ns = np.array([pd.Timestamp(cut).value for cut in cuts], dtype=np.int64)
    which = np.clip(np.searchsorted(cut_ns, at, side="right") - 1, 0, count - 1)
    visitors = impressions["visitor_id"].to_numpy()
    for i, cut in enumerate(cuts):
        selected = which == i
        if not selected.any():
            continue
        matrix = visitor_features(window_days=days, now=cut - timedelta(microseconds=1), events=events,
                                  content_types=layout.content_types)
        if not len(matrix):
            continue
        rows = pd.Index(matrix.visitor_ids).get_indexer(visitors[selected])
        known = rows >= 0
        target = np.flatnonzero(selected)[known]
        part[target] = matrix.values[np.ix_(rows[known], column_index)]
    return part


def fit_estimator(X: np.ndarray, y: np.ndarray, layout: Layout) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    mask = layout.categorical
    empty = np.isnan(X).all(axis=0)
    if empty.any():
        # A column missing in every training row (visitor features on a site's first day: nobody
        # has history yet) carries nothing, and breaks scikit-learn's binning ("window shape
        # cannot be larger than input array shape"): fitted as a constant instead.
        X = X.copy()
        X[:, empty] = 0.0
    estimator = HistGradientBoostingClassifier(
        categorical_features=mask if mask.any() else None, max_iter=get_setting("ENGAGEMENT_MAX_ITER"),
        random_state=0)
    return estimator.fit(X, y)


def _inactive_reason(rows: int, positives: int) -> str:
    min_rows, min_positives = get_setting("ENGAGEMENT_MIN_ROWS"), get_setting("ENGAGEMENT_MIN_POSITIVES")
    if rows < min_rows:
        return f"too little data: {rows} training impressions (at least {min_rows})"
    if positives < min_positives:
        return f"too little data: {positives} positive impressions (at least {min_positives})"
    if positives == rows:
        return "every training impression is positive: nothing to tell apart"
    return ""


def dump_estimator(estimator: Any) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    return buffer.getvalue()


def load_estimator(data: bytes | memoryview) -> Any:
    import joblib

    return joblib.load(io.BytesIO(bytes(data)))


def train(*, now: datetime | None = None, events: Any = None,
          progress: Progress | None = None) -> EngagementModel:
    """Build the training set, fit, measure on the held-out impressions, save the run."""
    from sklearn.metrics import log_loss, roc_auc_score

    from .models import EngagementModel

    started = time.perf_counter()
    step = progress or (lambda _done, _total: None)
    step(0, 4)
    data = training_set(now=now, events=events)
    step(1, 4)
    n = len(data.y)
    held_out = min(n, math.ceil(n * get_setting("ENGAGEMENT_HOLDOUT_SHARE"))) if n else 0
    split = n - held_out
    X_train, y_train, X_test, y_test = data.X[:split], data.y[:split], data.X[split:], data.y[split:]
    positives = int(y_train.sum())
    reason = _inactive_reason(split, positives)
    estimator = auc = loss = None
    if split and 0 < positives < split and split >= get_setting("ENGAGEMENT_MIN_ROWS"):
        estimator = fit_estimator(X_train, y_train, data.layout)
    elif split < get_setting("ENGAGEMENT_MIN_ROWS"):
        pass  # too little data (the reason says so): a few rows can even break the binning
    elif not reason:
        reason = "the training impressions are all one class"
    step(2, 4)
    if estimator is not None and held_out:
        probabilities = estimator.predict_proba(X_test)[:, 1]
        loss = float(log_loss(y_test, probabilities, labels=[0, 1]))
        if 0 < int(y_test.sum()) < held_out:
            auc = float(roc_auc_score(y_test, probabilities))
    if not reason and auc is None:
        reason = "AUC undefined: the held-out impressions are all one class (or none)"
    step(3, 4)
    with transaction.atomic():
        version = (EngagementModel.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        if not reason:
            EngagementModel.objects.filter(active=True).update(active=False)
        model = EngagementModel.objects.create(
            version=version, trained_at=timezone.now(),
            window_days=get_setting("LEARNING_WINDOW_DAYS"), training_rows=split, positives=positives,
            held_out_rows=held_out, auc=auc, log_loss=loss,
            duration_seconds=time.perf_counter() - started, feature_names=list(data.layout.names),
            layout=data.layout.to_json(),
            estimator=dump_estimator(estimator) if estimator is not None else None,
            active=not reason, inactive_reason=reason)
    step(4, 4)
    return model


def train_model(*, progress: Progress | None = None) -> EngagementModel:
    """The nightly job's entry point (Celery task, management command, admin button): train on
    the events of the window ending now. ``progress(done, total)`` reports the steps."""
    return train(progress=progress)


__all__ = ["Layout", "TrainingSet", "label_impressions", "live_columns", "train", "train_model",
           "training_set"]
