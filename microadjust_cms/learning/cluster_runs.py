"""``recluster``: one recorded clustering run over the database and the profile store.

Steps (reported through ``progress(done, total)``): build the features, cluster them
(``clustering.cluster_matrix``, matched against the active clusters), save the run and the
clusters in one transaction, then write every visitor's assignment to the profile store in
pipelined chunks. Below ``CLUSTER_MIN_VISITORS`` the run records "too few visitors" and changes
nothing; an error is recorded on the run (status "failed") and raised again, so a task retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from ..conf import get_setting
from .cluster_names import strongest_features
from .clustering import ClusterResult, PreviousClusters, cluster_matrix
from .features import visitor_features

if TYPE_CHECKING:
    from .models import ClusterRun

logger = logging.getLogger("microadjust_cms.learning")
#: Steps before the assignment chunks: features, fit, save.
FIXED_STEPS = 3


def recluster(*, k: int | None = None, method: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> ClusterRun:
    """Run the clustering now and return the recorded ``ClusterRun`` (see the module doc)."""
    from .models import ClusteringSettings, ClusterRun

    if k is None or method is None:  # what an editor fixed in Settings → Clustering, if anything
        fixed = ClusteringSettings.load()
        k = k if k is not None else fixed.fixed_k
        method = method or fixed.method
    method = method or get_setting("CLUSTER_METHOD")
    run = ClusterRun.objects.create(method=method, started_at=timezone.now())
    started = time.perf_counter()
    report = progress or (lambda _done, _total: None)
    try:
        matrix = visitor_features()
        run.visitors = len(matrix)
        chunks = -(-len(matrix) // get_setting("CLUSTER_ASSIGN_CHUNK"))
        total = FIXED_STEPS + chunks
        report(1, total)
        minimum = get_setting("CLUSTER_MIN_VISITORS")
        if len(matrix) < max(minimum, 2):
            run.status = ClusterRun.Status.TOO_FEW
            run.error = f"too few visitors: {len(matrix)} in the window, at least {minimum} needed"
            return _finish(run, started)
        result = cluster_matrix(matrix.values, matrix.names, k=k, method=method, previous=_previous())
        report(2, total)
        slugs = _save(run, result, matrix.names)
        report(3, total)
        _write_assignments(matrix.visitor_ids, np.asarray(slugs, dtype=object)[result.labels], run.pk,
                           lambda done: report(FIXED_STEPS + done, total))
        run.status = ClusterRun.Status.DONE  # from now on the run places new visitors
        return _finish(run, started)
    except Exception as exc:
        run.status = ClusterRun.Status.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        _finish(run, started)
        logger.exception("Clustering run %s failed", run.pk)
        raise


def _finish(run: ClusterRun, started: float) -> ClusterRun:
    run.finished_at = timezone.now()
    run.duration_seconds = time.perf_counter() - started
    run.save()
    return run


def _previous() -> PreviousClusters | None:
    """The active clusters' centroids (original units), on the union of their feature names."""
    from .models import Cluster

    clusters = list(Cluster.objects.filter(active=True).exclude(centroid={}))
    if not clusters:
        return None
    names = sorted({name for c in clusters for name in c.centroid})
    centroids = np.array([[c.centroid.get(name, np.nan) for name in names] for c in clusters], dtype=np.float64)
    return PreviousClusters(keys=[c.pk for c in clusters], names=names, centroids=centroids)


@transaction.atomic
def _save(run, result: ClusterResult, names: tuple[str, ...]) -> list[str]:
    """Update matched clusters, create new ones, retire unmatched ones; return slugs by index."""
    from .models import Cluster

    matched = {key for key in result.matches if key is not None}
    Cluster.objects.filter(active=True).exclude(pk__in=matched).update(active=False, size=0)
    number = (Cluster.objects.aggregate(n=Max("number"))["n"] or 0)
    slugs: list[str] = []
    for i in range(result.k):
        centroid = dict(zip(names, map(float, result.centroids[i]), strict=True))
        standardized = dict(zip(names, map(float, result.centroids_standardized[i]), strict=True))
        key = result.matches[i]
        cluster = Cluster.objects.filter(pk=key).first() if key is not None else None
        if cluster is None:
            number += 1
            cluster = Cluster(number=number, slug=f"cluster-{number}")
        if not cluster.name_is_custom:
            cluster.name = result.names[i]
        cluster.centroid, cluster.centroid_standardized = centroid, standardized
        cluster.size, cluster.active, cluster.last_run = int(result.sizes[i]), True, run
        cluster.save()
        slugs.append(cluster.slug)
    run.k, run.method, run.silhouette = result.k, result.method, result.silhouette
    run.silhouette_by_k = {str(k): v for k, v in result.silhouette_by_k.items()}
    run.sizes = [int(s) for s in result.sizes]
    run.slugs, run.feature_names = slugs, list(names)
    run.centroids = result.centroids.tolist()
    run.centroids_standardized = result.centroids_standardized.tolist()
    run.scaler_means, run.scaler_scales = result.means.tolist(), result.scales.tolist()
    run.save()
    return slugs


def _write_assignments(visitor_ids: np.ndarray, slugs: np.ndarray, run_id: int,
                       report: Callable[[int], None]) -> None:
    from ..visitor.stores import get_profile_store

    store = get_profile_store()
    chunk = get_setting("CLUSTER_ASSIGN_CHUNK")
    for done, start in enumerate(range(0, len(visitor_ids), chunk), start=1):
        store.set_clusters(zip(visitor_ids[start:start + chunk], slugs[start:start + chunk], strict=True),
                           run_id=run_id)
        report(done)


def run_features(run, limit: int = 3) -> list[list[tuple[str, float]]]:
    """The strongest standardized features of each of a run's clusters (admin)."""
    return [strongest_features(np.asarray(row), run.feature_names, limit)
            for row in run.centroids_standardized]
