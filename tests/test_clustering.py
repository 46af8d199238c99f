"""The clustering core on synthetic arrays: k choice, stable identity, names, nearest centroid."""

import numpy as np
import pytest

from microadjust_cms.learning.cluster_names import cluster_names, strongest_features
from microadjust_cms.learning.clustering import (
    ClusteringError,
    PreviousClusters,
    choose_k,
    cluster_matrix,
    match_clusters,
    nearest_centroid,
    standardize,
)
from microadjust_cms.learning.features import feature_names

NAMES = feature_names(["article", "video"])


def blobs(k, per=300, dims=None, spread=8.0, seed=0):
    dims = dims or len(NAMES)
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, spread, (k, dims))
    values = np.vstack([c + rng.normal(0, 1, (per, dims)) for c in centers])
    truth = np.repeat(np.arange(k), per)
    return values, truth, centers


@pytest.mark.parametrize("planted", [2, 3, 5])
def test_silhouette_finds_the_planted_k(planted):
    values, _truth, _c = blobs(planted, seed=planted)
    z, _scaler = standardize(values)
    k, scores = choose_k(z, (2, 8), sample_size=800)
    assert k == planted
    assert set(scores) == set(range(2, 9))


def test_cluster_matrix_recovers_the_planted_groups(settings):
    from sklearn.metrics import adjusted_rand_score

    values, truth, centers = blobs(4, seed=7)
    result = cluster_matrix(values, NAMES)
    assert result.k == 4
    assert adjusted_rand_score(truth, result.labels) == pytest.approx(1.0)
    assert sorted(result.sizes) == [300] * 4
    # centroids come back in original units: each is near one planted center
    for centroid in result.centroids:
        assert np.min(np.linalg.norm(centers - centroid, axis=1)) < 0.5
    assert result.matches == [None] * 4 and len(set(result.names)) == 4


def test_a_fixed_k_skips_the_choice_and_bad_arguments_are_refused(settings):
    values, _truth, _c = blobs(3, seed=1)
    result = cluster_matrix(values, NAMES, k=2)
    assert result.k == 2 and result.silhouette_by_k == {} and result.silhouette is not None
    with pytest.raises(ClusteringError, match="between 1 and"):
        cluster_matrix(values, NAMES, k=0)
    with pytest.raises(ClusteringError, match="Unknown clustering method"):
        cluster_matrix(values, NAMES, method="dbscan")


def test_hierarchical_is_an_option_for_small_populations_only(settings):
    values, truth, _c = blobs(3, per=100, seed=2)
    result = cluster_matrix(values, NAMES, method="hierarchical")
    assert result.k == 3 and result.method == "hierarchical"
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(truth, result.labels) == pytest.approx(1.0)
    settings.MICROADJUST_CLUSTER_HIERARCHICAL_MAX_VISITORS = 200
    with pytest.raises(ClusteringError, match="CLUSTER_HIERARCHICAL_MAX_VISITORS"):
        cluster_matrix(values, NAMES, method="hierarchical", k=3)


def test_matching_keeps_permuted_slightly_moved_centroids_and_refuses_far_ones():
    rng = np.random.default_rng(3)
    previous = rng.normal(0, 4, (4, 6))
    order = [2, 0, 3, 1]
    moved = previous[order] + rng.normal(0, 0.1, (4, 6))
    assert match_clusters(moved, previous, threshold=1.5) == order
    far = moved.copy()
    far[1] += 10  # the second new centroid is nowhere near any previous one
    assert match_clusters(far, previous, threshold=1.5) == [2, None, 3, 1]
    # more new clusters than old: the extra one is new; fewer: unmatched old ones drop out
    extra = np.vstack([moved, previous[0] + 20])
    assert match_clusters(extra, previous, threshold=1.5) == [*order, None]
    assert match_clusters(moved[:2], previous, threshold=1.5) == [2, 0]


def test_a_second_run_matches_the_previous_clusters_by_key(settings):
    values, _truth, _c = blobs(3, seed=4)
    first = cluster_matrix(values, NAMES, random_state=0)
    previous = PreviousClusters(keys=["a", "b", "c"], names=NAMES, centroids=first.centroids)
    rng = np.random.default_rng(9)
    again = values[rng.permutation(len(values))] + rng.normal(0, 0.05, values.shape)
    second = cluster_matrix(again, NAMES, random_state=5, previous=previous)
    # each new cluster continues the old one whose centroid it sits on
    for i, key in enumerate(second.matches):
        old = ["a", "b", "c"].index(key)
        assert np.linalg.norm(second.centroids[i] - first.centroids[old]) < 0.5


def test_matching_works_when_the_feature_columns_changed(settings):
    values, _truth, _c = blobs(3, seed=5)
    first = cluster_matrix(values, NAMES, k=3)
    # the next run has one more content type (a column the previous run did not have)
    wider_names = (*NAMES, "affinity:podcast")
    wider = np.column_stack([values, np.zeros(len(values))])
    previous = PreviousClusters(keys=[10, 11, 12], names=NAMES, centroids=first.centroids)
    second = cluster_matrix(wider, wider_names, k=3, previous=previous)
    assert sorted(second.matches) == [10, 11, 12]


def test_names_read_the_planted_extremes():
    names = ("mean_scroll_depth", "mean_dwell_seconds", "mobile_share", "affinity:video",
             "click_rate")
    centroids = np.array([
        [2.0, 1.2, -1.5, -0.3, 0.1],   # deep, long readers on desktops
        [-0.2, -0.1, 1.8, 2.5, 0.4],   # video on phones
        [-1.9, -0.3, 0.1, 0.0, 0.0],   # skimmers, any device
        [0.1, 0.2, -0.1, 0.0, 0.3],    # nothing stands out
    ])
    assert cluster_names(centroids, names) == [
        "deep readers, desktop", "video fans, mobile", "skimmers", "typical visitors"]
    assert strongest_features(centroids[0], names) == [
        ("mean_scroll_depth", 2.0), ("mobile_share", -1.5), ("mean_dwell_seconds", 1.2)]


def test_equal_names_take_a_second_word_then_a_number():
    names = ("mean_scroll_depth", "click_rate", "mobile_share")
    centroids = np.array([[2.0, 1.0, 1.0], [2.0, -1.0, 1.0], [2.1, 1.1, 1.0]])
    assert cluster_names(centroids, names) == [
        "deep readers, clickers, mobile", "deep readers, non-clickers, mobile",
        "deep readers, clickers, mobile (2)"]


def test_nearest_centroid_imputes_unknown_features_to_the_mean():
    means, scales = np.array([10.0, 0.5, 50.0]), np.array([2.0, 0.1, 10.0])
    centroids = np.array([[1.0, 0.0, -1.0], [-1.0, 0.0, 1.0]])
    assert nearest_centroid(np.array([12.0, np.nan, 40.0]), means, scales, centroids) == 0
    assert nearest_centroid(np.array([np.nan, 0.9, 60.0]), means, scales, centroids) == 1
