"""Cluster segments at render time: which cluster a visitor is in, with zero SQL when steady.

A visitor's cluster is the one the last run wrote to their profile (while that cluster is still
active); a visitor first seen after the run is placed at request time on the nearest centroid of
the latest run, from their live profile (``profile_features``; what the profile cannot tell is
imputed to the run's means). The latest run's centroids and scaler, and the active clusters, are
read once per process and re-read after a run or an edit (a generation number in the Django
cache, checked at most every ``SEGMENT_REFRESH_SECONDS``), as rule segments are.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from django.utils.translation import gettext_lazy as _

from ..process_copies import ProcessCopy
from ..signals.registry import Signal

if TYPE_CHECKING:
    from ..visitor.context import VisitorContext

logger = logging.getLogger("microadjust_cms.cluster_segments")
GENERATION_KEY = "microadjust:clusters:generation"


@dataclass(frozen=True)
class ClusterState:
    """The latest successful run's numbers and the active clusters (slug → name)."""

    run_id: int | None = None
    feature_names: tuple[str, ...] = ()
    means: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scales: np.ndarray = field(default_factory=lambda: np.ones(0))
    centroids: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    slugs: tuple[str, ...] = ()
    active: dict[str, str] = field(default_factory=dict)

    def nearest(self, profile: Any, *, device: str, now: float) -> str | None:
        """The slug of the centroid nearest to the live profile, or None without a run."""
        if not self.slugs:
            return None
        from ..learning.clustering import nearest_centroid
        from ..learning.features import profile_features

        vector = profile_features(profile, self.feature_names, device=device, now=now)
        return self.slugs[nearest_centroid(vector, self.means, self.scales, self.centroids)]


def load_state() -> ClusterState:
    from ..learning.models import Cluster, ClusterRun

    active = dict(Cluster.objects.filter(active=True).order_by("number").values_list("slug", "name"))
    # The latest run that saved its clusters places new visitors, whether its assignment write
    # finished (done), is under way or failed: the active clusters are that run's, and placing
    # on an older run's centroids would hand out retired slugs and never the new ones.
    recent = (ClusterRun.objects.exclude(status=ClusterRun.Status.TOO_FEW).order_by("-started_at", "-pk")
              .only("pk", "feature_names", "scaler_means", "scaler_scales", "centroids_standardized", "slugs")[:20])
    run = next((r for r in recent if r.slugs), None)
    if run is None:
        return ClusterState(active=active)
    scales = np.asarray(run.scaler_scales, dtype=np.float64)
    return ClusterState(
        run_id=run.pk, feature_names=tuple(run.feature_names),
        means=np.asarray(run.scaler_means, dtype=np.float64), scales=np.where(scales > 0, scales, 1.0),
        centroids=np.asarray(run.centroids_standardized, dtype=np.float64), slugs=tuple(run.slugs), active=active)


#: The latest run's centroids and the active clusters; ``invalidate()`` after a run or an edit.
cluster_cache: ProcessCopy[ClusterState] = ProcessCopy(
    "cluster", GENERATION_KEY, load_state, "SEGMENT_REFRESH_SECONDS")


def cluster_choices(*, retired: bool = True) -> list[tuple[str, str]]:
    """Clusters for the admin (read at admin time, like segments): the active ones, then the
    retired ones, labelled so. Retired clusters stay valid choices so a page or segment that
    names one can still be saved (the rule is false at render) after a run retired it."""
    from ..learning.models import Cluster

    rows = Cluster.objects.order_by("-active", "number").values_list("slug", "name", "active")
    return [(slug, name if active else f"{name} ({_('retired')})")
            for slug, name, active in rows if active or retired]


def cluster_segment_choices() -> list[tuple[str, str]]:
    """Clusters as segment choices: labelled so editors tell them from rule segments."""
    return [(slug, f"{_('Cluster')}: {name}") for slug, name in cluster_choices()]


def visitor_cluster(visitor: VisitorContext) -> str | None:
    """The visitor's cluster slug (see the module doc); raises ``StoreUnavailable`` like any
    profile signal when the store is down."""
    profile = visitor.profile
    state = cluster_cache.get()
    assigned = getattr(profile, "cluster", "")
    if assigned and assigned in state.active:
        return assigned
    return state.nearest(profile, device=visitor.signal("device"), now=time.time())


def is_cluster_slug(slug: str) -> bool:
    return slug in cluster_cache.get().active


def _cluster(v: VisitorContext, _p: str | None) -> str | None:
    return visitor_cluster(v)


CLUSTER_SIGNALS = [
    Signal("cluster", "string", _cluster, _("Cluster"), choices=cluster_choices, needs_profile=True,
           help_text=_("The behaviour cluster the nightly clustering put the visitor in (a visitor "
                       "first seen since: the nearest cluster from their profile so far).")),
]


def _clusters_changed(**_kwargs: object) -> None:
    """As for engagement models: other processes are told once the change is committed (told
    inside a run's transaction, they could reload the old clusters and keep them)."""
    from django.db import transaction

    cluster_cache.forget()
    transaction.on_commit(cluster_cache.invalidate)


def connect_signals() -> None:
    """Called from the app's ``ready``: a run, or an editor's rename, reaches every process."""
    from django.db.models.signals import post_delete, post_save

    from ..learning.models import Cluster, ClusterRun

    post_save.connect(_clusters_changed, sender=ClusterRun, dispatch_uid="ma-cluster-run-save")
    post_save.connect(_clusters_changed, sender=Cluster, dispatch_uid="ma-cluster-save")
    post_delete.connect(_clusters_changed, sender=Cluster, dispatch_uid="ma-cluster-delete")
