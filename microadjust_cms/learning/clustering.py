"""Clustering visitors by behaviour: the pure core over arrays, and ``recluster`` (the run).

``cluster_matrix`` standardizes the feature matrix (z-scores, so a count and a rate weigh the
same), picks k by the silhouette on a sample unless k is fixed, fits MiniBatchKMeans (or Ward
hierarchical clustering for small populations), matches the new centroids to the previous
clusters' with the Hungarian assignment so a cluster that persists keeps its identity, and
names the clusters. It touches no database, so the bench times exactly what a run computes.
``recluster`` (``cluster_runs``) builds the features, calls it, saves and writes assignments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import AgglomerativeClustering, MiniBatchKMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ..conf import get_setting
from .cluster_names import cluster_names

if TYPE_CHECKING:
    from .models import ClusterRun

METHODS = ("kmeans", "hierarchical")
#: MiniBatchKMeans batch: large enough that 1M rows need few steps, small enough for 2 cores.
BATCH_SIZE = 4096
#: Below this many rows a fit runs on one thread (thread start-up and spinning cost more).
PARALLEL_ROWS = 100_000


class ClusteringError(ValueError):
    """A run cannot be done as asked (unknown method, population too large for hierarchical)."""


@dataclass(frozen=True)
class PreviousClusters:
    """The clusters a new run is matched against: centroids in original units."""

    keys: Sequence[object]
    names: Sequence[str]
    centroids: np.ndarray


@dataclass
class ClusterResult:
    """What one run found. Rows of the centroid arrays follow cluster index 0..k-1."""

    k: int
    method: str
    labels: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    centroids: np.ndarray
    centroids_standardized: np.ndarray
    sizes: np.ndarray
    names: list[str]
    silhouette: float | None
    silhouette_by_k: dict[int, float] = field(default_factory=dict)
    #: For each new cluster, the key of the previous cluster it continues, or None (new).
    matches: list[object | None] = field(default_factory=list)


def standardize(values: np.ndarray) -> tuple[np.ndarray, StandardScaler]:
    """z-scores per column (a constant column gets scale 1, so it stays 0)."""
    scaler = StandardScaler(copy=True)
    z = scaler.fit_transform(np.asarray(values, dtype=np.float64))
    return z, scaler


def _sample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= size else np.sort(rng.choice(n, size=size, replace=False))


def fit_labels(z: np.ndarray, k: int, *, method: str = "kmeans",
               random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and standardized centroids for a fixed k."""
    if method == "kmeans":
        model = MiniBatchKMeans(n_clusters=k, n_init=get_setting("CLUSTER_N_INIT"), random_state=random_state,
                                batch_size=min(BATCH_SIZE, len(z)))
        labels = model.fit_predict(z)
        centroids = model.cluster_centers_
    elif method == "hierarchical":
        limit = get_setting("CLUSTER_HIERARCHICAL_MAX_VISITORS")
        if len(z) > limit:
            raise ClusteringError(
                f"Hierarchical clustering keeps a distance for every pair of visitors: {len(z)} visitors are more "
                f"than CLUSTER_HIERARCHICAL_MAX_VISITORS ({limit}); use the 'kmeans' method.")
        labels = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(z)
        centroids = np.vstack([z[labels == i].mean(axis=0) for i in range(k)])
    else:
        raise ClusteringError(f"Unknown clustering method {method!r}: use one of {', '.join(METHODS)}.")
    return labels.astype(np.int32), centroids


def choose_k(z: np.ndarray, k_range: tuple[int, int], *, sample_size: int, method: str = "kmeans",
             random_state: int = 0) -> tuple[int, dict[int, float]]:
    """The k in ``k_range`` (inclusive) with the best silhouette, fitting and scoring a sample.

    Silhouette is quadratic in the rows, so both the fits and the scores use one random sample
    of ``sample_size`` rows; the final fit then uses every row.
    """
    rng = np.random.default_rng(random_state)
    sample = z[_sample(len(z), sample_size, rng)]
    low, high = k_range
    high = min(high, len(sample) - 1)
    scores: dict[int, float] = {}
    # One thread: on a sample, OpenMP threads cost more in start-up and spinning than they save.
    with threadpool_limits(1):
        for k in range(max(low, 2), high + 1):
            labels, _c = fit_labels(sample, k, method=method, random_state=random_state)
            if len(np.unique(labels)) < 2:
                continue
            scores[k] = float(silhouette_score(sample, labels))
    if not scores:
        raise ClusteringError(f"No k in {k_range} can be scored on {len(sample)} visitors.")
    best = max(scores, key=lambda k: (round(scores[k], 6), -k))  # ties: the smaller k
    return best, scores


def match_clusters(new_standardized: np.ndarray, previous_standardized: np.ndarray,
                   threshold: float) -> list[int | None]:
    """For each new centroid, the index of the previous one it continues, or None.

    The Hungarian assignment (``linear_sum_assignment``) minimizes the total Euclidean distance
    in standardized units between paired centroids; a pair further apart than ``threshold`` is
    not a continuation, so that new centroid is a new cluster.
    """
    result: list[int | None] = [None] * len(new_standardized)
    if len(new_standardized) == 0 or len(previous_standardized) == 0:
        return result
    cost = np.linalg.norm(new_standardized[:, None, :] - previous_standardized[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    for row, col in zip(rows, cols, strict=True):
        if cost[row, col] <= threshold:
            result[row] = int(col)
    return result


def _previous_in(previous: PreviousClusters, previous_names: Sequence[str], names: Sequence[str],
                 scaler: StandardScaler) -> np.ndarray:
    """Previous centroids in this run's standardized space, on this run's columns (a column the
    previous run lacked, such as a new content type, is taken as this run's mean: 0)."""
    out = np.zeros((len(previous.keys), len(names)))
    where = {name: i for i, name in enumerate(previous_names)}
    for j, name in enumerate(names):
        if name in where:
            out[:, j] = (previous.centroids[:, where[name]] - scaler.mean_[j]) / scaler.scale_[j]
    return np.nan_to_num(out)  # a column only some previous clusters had


def cluster_matrix(values: np.ndarray, names: Sequence[str], *, k: int | None = None, method: str | None = None,
                   previous: PreviousClusters | None = None, random_state: int = 0) -> ClusterResult:
    """The pure core of a run (see the module doc). ``previous.centroids`` are in original units
    with columns ``previous.names``; settings give the k range, sample size and threshold."""
    method = method or get_setting("CLUSTER_METHOD")
    if method not in METHODS:
        raise ClusteringError(f"Unknown clustering method {method!r}: use one of {', '.join(METHODS)}.")
    z, scaler = standardize(values)
    scores: dict[int, float] = {}
    if k is None:
        k, scores = choose_k(z, tuple(get_setting("CLUSTER_K_RANGE")), method=method,
                             sample_size=get_setting("CLUSTER_SILHOUETTE_SAMPLE"), random_state=random_state)
    elif not 1 <= k <= len(z):
        raise ClusteringError(f"k must be between 1 and the number of visitors ({len(z)}), not {k}.")
    with threadpool_limits(None if len(z) >= PARALLEL_ROWS else 1):
        labels, centroids_std = fit_labels(z, k, method=method, random_state=random_state)
    sizes = np.bincount(labels, minlength=k)
    matches: list[object | None] = [None] * k
    if previous is not None and len(previous.keys):
        prev_std = _previous_in(previous, previous.names, names, scaler)
        indices = match_clusters(centroids_std, prev_std, get_setting("CLUSTER_NEW_DISTANCE"))
        matches = [previous.keys[i] if i is not None else None for i in indices]
    silhouette = scores.get(k)
    if silhouette is None and k > 1:
        rng = np.random.default_rng(random_state)
        rows = _sample(len(z), get_setting("CLUSTER_SILHOUETTE_SAMPLE"), rng)
        if len(np.unique(labels[rows])) > 1:
            with threadpool_limits(1):
                silhouette = float(silhouette_score(z[rows], labels[rows]))
    return ClusterResult(
        k=k, method=method, labels=labels, means=scaler.mean_.copy(), scales=scaler.scale_.copy(),
        centroids=scaler.inverse_transform(centroids_std), centroids_standardized=centroids_std,
        sizes=sizes, names=cluster_names(centroids_std, names), silhouette=silhouette,
        silhouette_by_k=scores, matches=matches)


def nearest_centroid(vector: np.ndarray, means: np.ndarray, scales: np.ndarray,
                     centroids_standardized: np.ndarray) -> int:
    """Index of the closest centroid to one visitor's vector; NaN features are imputed to the
    run's means (0 once standardized), so they pull toward no cluster."""
    z = (vector - means) / scales
    z = np.where(np.isnan(z), 0.0, z)
    return int(np.argmin(((centroids_standardized - z) ** 2).sum(axis=1)))


def recluster(*, k: int | None = None, method: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> ClusterRun:
    """Deprecated: use ``learning.cluster_runs.recluster`` (this module is the arithmetic only;
    importing the run from here made the two import each other)."""
    import warnings
    from importlib import import_module

    warnings.warn("microadjust_cms.learning.clustering.recluster moved to "
                  "microadjust_cms.learning.cluster_runs.recluster", DeprecationWarning, stacklevel=2)
    return import_module("microadjust_cms.learning.cluster_runs").recluster(k=k, method=method, progress=progress)
