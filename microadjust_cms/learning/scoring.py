"""Scoring blocks for a visitor with the active engagement model, at render time.

The active model is loaded once per process and kept; a process checks at most every
``ENGAGEMENT_REFRESH_SECONDS`` whether another one activated a new model (a generation number
in the Django cache, as ``segments`` does), so render needs zero SQL queries in the steady
state. ``rank`` builds the visitor's live feature vector once a request and scores every item
in one batched call; it keeps the editor's order (``scores`` None, ``reason`` saying why) when
there is no model, the model is stale or was trained on too little data, the visitor opted out
of tracking, or the profile store is down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..conf import get_setting
from ..process_copies import ProcessCopy
from ..visitor.stores import StoreUnavailable
from .engagement import Layout, load_estimator
from .features import profile_features
from .predictor import fast_predictor

logger = logging.getLogger("microadjust_cms.learning")
GENERATION_KEY = "microadjust:engagement:generation"

#: Why an order is the editor's (``Ranking.reason``); "model" when the model ordered it.
MODEL, NO_MODEL, STALE, THIN, OPTED_OUT, UNAVAILABLE = (
    "model", "no-model", "stale", "thin", "opted-out", "store-unavailable")


class Item(NamedTuple):
    """What the model knows of a block: its content type, tags and position."""

    content_type: str
    tags: tuple[str, ...] | str
    position: int | None


@dataclass
class LoadedModel:
    """The active model as a process keeps it."""

    version: int
    trained_at: float  # epoch seconds
    training_rows: int
    positives: int
    layout: Layout
    #: X (float64, columns ``layout.names``) → probability of engagement per row: ONE call a block.
    predict: Callable[[np.ndarray], np.ndarray]
    _block_rows: dict[Any, np.ndarray] = field(default_factory=dict)

    def unusable(self, now: float) -> str:
        """Why this model must not order blocks now ("" when it may)."""
        if now - self.trained_at > get_setting("ENGAGEMENT_MAX_AGE_DAYS") * 86400:
            return STALE
        if (self.training_rows < get_setting("ENGAGEMENT_MIN_ROWS")
                or self.positives < get_setting("ENGAGEMENT_MIN_POSITIVES")):
            return THIN
        return ""

    def block_row(self, item: Item) -> np.ndarray:
        """The block features of an item (cached: a page's blocks repeat on every render)."""
        key = (item.content_type, item.tags, item.position)
        row = self._block_rows.get(key)
        if row is None:
            if len(self._block_rows) > 10000:
                self._block_rows.clear()
            row = self._block_rows[key] = self.layout.block_row(*item)
        return row

    def matrix(self, vector: np.ndarray, items: Sequence[Item]) -> np.ndarray:
        """One row per item: the visitor's vector, then the item's block features."""
        X = np.empty((len(items), len(vector) + len(self.layout.names) - len(self.layout.visitor_features)))
        X[:, :len(vector)] = vector
        if items:
            X[:, len(vector):] = [self.block_row(item) for item in items]
        return X


def load(row: Any) -> LoadedModel:
    estimator = load_estimator(row.estimator)
    return LoadedModel(version=row.version, trained_at=row.trained_at.timestamp(),
                       training_rows=row.training_rows, positives=row.positives,
                       layout=Layout.from_json(row.layout), predict=fast_predictor(estimator))


def _load_active() -> LoadedModel | None:
    from .models import EngagementModel

    row = (EngagementModel.objects.filter(active=True, estimator__isnull=False)
           .order_by("-version").first())
    if row is None:
        return None
    try:
        return load(row)
    except Exception:  # unreadable (another scikit-learn version?): editors' order, logged
        logger.exception("Engagement model v%s could not be loaded", row.version)
        return None


#: The active engagement model (None: editors' order); ``invalidate()`` when one is activated.
model_cache: ProcessCopy[LoadedModel | None] = ProcessCopy(
    "engagement model", GENERATION_KEY, _load_active, "ENGAGEMENT_REFRESH_SECONDS")


def usable_model(now: float | None = None) -> tuple[LoadedModel | None, str]:
    """The model that may order blocks now, or None and why not."""
    model = model_cache.get()
    if model is None:
        return None, NO_MODEL
    reason = model.unusable(time.time() if now is None else now)
    return (None, reason) if reason else (model, MODEL)


def visitor_vector(visitor: Any, model: LoadedModel) -> np.ndarray:
    """The visitor's live features in the model's columns, once a request (memoized).
    Raises ``StoreUnavailable`` when the profile cannot be loaded."""
    key = ("__engagement_vector", model.version)
    vector = visitor.memo.get(key)
    if vector is None:
        vector = visitor.memo[key] = profile_features(
            visitor.profile, model.layout.visitor_features, device=visitor.signal("device"),
            now=time.time())
    return vector


class Ranking(NamedTuple):
    """``order``: item indexes, best first; ``scores``: probabilities in the items' own order
    (None when the editor's order stands); ``reason``: "model" or why the editor's order."""

    order: list[int]
    scores: np.ndarray | None
    reason: str


def score(visitor: Any, items: Sequence[Item]) -> np.ndarray | None:
    """Probabilities of engagement for ``items`` (one batched predict), None when no model may."""
    return rank(visitor, items).scores


def rank(visitor: Any, items: Sequence[Item]) -> Ranking:
    editor = list(range(len(items)))
    if not getattr(visitor, "simulated", False) and not visitor.tracking_allowed:
        return Ranking(editor, None, OPTED_OUT)
    model, reason = usable_model()
    if model is None:
        return Ranking(editor, None, reason)
    if not items:
        return Ranking(editor, np.zeros(0), MODEL)
    try:
        vector = visitor_vector(visitor, model)
    except StoreUnavailable:
        return Ranking(editor, None, UNAVAILABLE)
    scores = model.predict(model.matrix(vector, items))
    # Stable: equal scores keep the editor's order.
    return Ranking(np.argsort(-scores, kind="stable").tolist(), scores, MODEL)


def _engagement_models_changed(**_kwargs: object) -> None:
    """This process reloads the active model at once; others once the change is committed (told
    earlier, they could reload the old model and keep it)."""
    from django.db import transaction

    model_cache.forget()
    transaction.on_commit(model_cache.invalidate)


def connect_signals() -> None:
    """Called from the app's ``ready``: training or activating a model reaches every process."""
    from django.db.models.signals import post_delete, post_save

    from .models import EngagementModel

    post_save.connect(_engagement_models_changed, sender=EngagementModel, dispatch_uid="ma-engagement-save")
    post_delete.connect(_engagement_models_changed, sender=EngagementModel, dispatch_uid="ma-engagement-delete")


__all__ = ["Item", "LoadedModel", "Ranking", "model_cache", "rank", "score", "usable_model",
           "visitor_vector"]
