"""Reclustering 1,000,000 visitors: wall time, peak memory, a bare-fit ratio and the adjusted Rand index.

A seeded generator draws visitors of five hidden types directly in feature space (the columns of
``learning/features.py``), with realistic shapes: Poisson visit counts, gamma dwell and page views,
beta rates and scroll depths, binomial mobile shares over the visits, exponential recency, and
Dirichlet content affinities, with overlap between types and 2 % of visitors drawn from no type
at all (noise). Each repeat runs in a fresh child process and times, on the same matrix:

- ``core``: the recluster pure core, ``clustering.cluster_matrix``: standardize, choose k by the
  silhouette on a sample within ``CLUSTER_K_RANGE``, MiniBatchKMeans on every row, Hungarian
  matching against "last night's" clusters (the planted type means, moved by noise), and naming;
- ``bare``: ``MiniBatchKMeans(n_clusters=k)`` with the same k, ``n_init``, batch size and seed,
  fitted on the already standardized matrix: the cost of clustering alone (ratio core / bare);
- optionally (``--redis URL``) the bulk assignment write of every visitor's slug to the real
  Redis through ``RedisProfileStore.set_clusters`` (keys under a ``bench`` prefix, deleted after).

Memory is the peak resident set size of the child process (``getrusage(RUSAGE_SELF).ru_maxrss``:
generator, matrix and clustering together, the Python interpreter and libraries included), and
the part added by the core (peak minus the RSS just before it). The adjusted Rand index compares
the core's labels with the hidden types (noise visitors included). Budgets (DESIGN.md): core under
60 s, peak under 2 GB, ARI at least 0.8. Median over ``--repeats``; writes bench/results/cluster.json.

    .venv/bin/python bench/cluster.py [--visitors 1000000] [--repeats 3] [--redis redis://127.0.0.1:6379/11]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONTENT_TYPES = ("article", "video", "product", "podcast")
NOISE_SHARE = 0.02

#: type → (share, visits mean, pages/visit, scroll a/b, dwell shape/scale, click a/b, abandon a/b,
#: conversion a/b, mobile probability, days-since mean, affinity Dirichlet alphas).
TYPES = {
    "desktop deep readers": (0.25, 6, 3.0, (8, 2), (4, 12), (3, 12), (1, 20), (1, 40), 0.15, 3, (12, 1, 1, 2)),
    "mobile video fans": (0.25, 3, 1.5, (3, 4), (3, 4), (5, 8), (2, 10), (1, 60), 0.9, 2, (1, 12, 1, 2)),
    "skimmers": (0.25, 1.3, 1.2, (1.5, 8), (1.5, 1.5), (1, 30), (8, 6), (1, 200), 0.55, 12, (3, 3, 2, 1)),
    "shoppers": (0.15, 4, 5.0, (3, 3), (2.5, 4), (6, 6), (2, 12), (6, 10), 0.4, 5, (1, 1, 12, 1)),
    "podcast listeners": (0.10, 5, 1.3, (4, 4), (6, 20), (2, 12), (1, 15), (1, 50), 0.7, 4, (2, 1, 1, 12)),
}


def synthetic_visitors(n: int, seed: int = 42) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, hidden type per row with -1 for noise, planted type means in original units)."""
    rng = np.random.default_rng(seed)
    shares = np.array([t[0] for t in TYPES.values()])
    truth = rng.choice(len(TYPES), size=n, p=shares / shares.sum())
    truth[rng.random(n) < NOISE_SHARE] = -1
    columns = np.zeros((n, 9 + len(CONTENT_TYPES)))
    for index, spec in enumerate([*TYPES.values(), None]):
        rows = np.flatnonzero(truth == (index if spec is not None else -1))
        m = len(rows)
        if spec is None:  # noise: a random blend of every type's parameters
            parts = [rng.integers(1, 9, m), rng.uniform(1, 6, m), rng.uniform(0, 100, m), rng.uniform(0, 120, m),
                     rng.uniform(0, 0.6, m), rng.uniform(0, 0.7, m), rng.uniform(0, 0.2, m), rng.uniform(0, 1, m),
                     rng.uniform(0, 30, m)]
            affinity = rng.dirichlet(np.ones(len(CONTENT_TYPES)), m)
        else:
            _s, visits, pages, scroll, dwell, click, abandon, conv, mobile, days, alphas = spec
            n_visits = 1 + rng.poisson(max(visits - 1, 0.05), m)
            parts = [n_visits, 1 + rng.gamma(2.0, (pages - 1) / 2.0 + 1e-3, m), 100 * rng.beta(*scroll, m),
                     rng.gamma(dwell[0], dwell[1], m), rng.beta(*click, m), rng.beta(*abandon, m),
                     rng.beta(*conv, m), rng.binomial(n_visits, mobile) / n_visits,
                     rng.exponential(days, m)]
            affinity = rng.dirichlet(np.array(alphas, dtype=float), m)
        columns[rows, :9] = np.column_stack(parts)
        columns[rows, 9:] = affinity
    means = np.vstack([columns[truth == i].mean(axis=0) for i in range(len(TYPES))])
    return columns, truth, means


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def one_repeat(args: dict) -> dict:
    """Runs in a fresh child process: generate, time the core, the bare fit, the Redis write."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings.test")
    import django

    django.setup()
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler

    from microadjust_cms.conf import get_setting
    from microadjust_cms.learning import clustering
    from microadjust_cms.learning.features import feature_names

    names = feature_names(CONTENT_TYPES)
    values, truth, planted = synthetic_visitors(args["visitors"], seed=args["seed"])
    rng = np.random.default_rng(args["seed"] + 1)
    previous = clustering.PreviousClusters(keys=list(range(len(planted))), names=names,
                                           centroids=planted * (1 + rng.normal(0, 0.03, planted.shape)))
    rss_before = _rss_mb()
    started = time.perf_counter()
    result = clustering.cluster_matrix(values, names, previous=previous, random_state=args["seed"])
    core = time.perf_counter() - started
    peak_core = _peak_mb()
    ari = adjusted_rand_score(truth, result.labels)

    z = StandardScaler().fit_transform(values)
    started = time.perf_counter()
    MiniBatchKMeans(n_clusters=result.k, n_init=get_setting("CLUSTER_N_INIT"), random_state=args["seed"],
                    batch_size=clustering.BATCH_SIZE).fit(z)
    bare = time.perf_counter() - started
    del z

    redis_seconds = None
    if args.get("redis"):
        redis_seconds = _time_redis_write(args["redis"], result, args["visitors"])
    return {"core_seconds": core, "bare_seconds": bare, "ratio": core / bare, "ari": ari, "k": result.k,
            "silhouette": result.silhouette, "matched": sum(m is not None for m in result.matches),
            "names": result.names, "sizes": [int(s) for s in result.sizes],
            "rss_before_core_mb": rss_before, "peak_rss_mb": _peak_mb(), "peak_rss_after_core_mb": peak_core,
            "redis_write_seconds": redis_seconds}


def _time_redis_write(url: str, result, n: int) -> float:
    from django.conf import settings
    from django.test.utils import override_settings

    caches = {**settings.CACHES, "bench-redis": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url}}
    with override_settings(CACHES=caches, MICROADJUST_REDIS_ALIAS="bench-redis", MICROADJUST_KEY_PREFIX="bench"):
        from microadjust_cms.visitor.stores.redis import RedisProfileStore

        store = RedisProfileStore()
        ids = np.char.add("v", np.arange(n).astype(str)).astype(object)
        slugs = np.array([f"cluster-{i + 1}" for i in range(result.k)], dtype=object)[result.labels]
        started = time.perf_counter()
        store.set_clusters(zip(ids, slugs, strict=True), run_id=1)
        seconds = time.perf_counter() - started
        cursor, pipe = 0, store.client.pipeline(transaction=False)
        while True:  # remove the bench keys (and only them)
            cursor, keys = store.client.scan(cursor, match="bench:{*}:p", count=10000)
            for key in keys:
                pipe.unlink(key)
            pipe.execute()
            if cursor == 0:
                break
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--visitors", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--redis", default="", help="also time the assignment write to this Redis URL")
    parser.add_argument("--out", default=str(HERE / "results" / "cluster.json"))
    options = parser.parse_args()

    context = mp.get_context("spawn")  # a fresh process per repeat: its peak RSS is that repeat's
    runs = []
    for repeat in range(options.repeats):
        with context.Pool(1) as pool:
            runs.append(pool.apply(one_repeat, ({"visitors": options.visitors, "seed": options.seed + repeat,
                                                 "redis": options.redis},)))
        run = runs[-1]
        print(f"repeat {repeat + 1}: core {run['core_seconds']:.2f} s, bare {run['bare_seconds']:.2f} s, "
              f"k={run['k']}, ARI {run['ari']:.3f}, peak RSS {run['peak_rss_mb']:.0f} MB", flush=True)

    def median(key: str) -> float | None:
        values = [r[key] for r in runs if r[key] is not None]
        return statistics.median(values) if values else None

    summary = {key: median(key) for key in ("core_seconds", "bare_seconds", "ratio", "ari", "peak_rss_mb",
                                            "rss_before_core_mb", "redis_write_seconds")}
    summary["core_memory_mb"] = statistics.median(r["peak_rss_after_core_mb"] - r["rss_before_core_mb"] for r in runs)
    budgets = {"core_seconds": 60.0, "peak_rss_mb": 2048.0, "ari": 0.8}
    passed = (summary["core_seconds"] < budgets["core_seconds"] and summary["peak_rss_mb"] < budgets["peak_rss_mb"]
              and summary["ari"] >= budgets["ari"])
    rows = [("visitors", f"{options.visitors:,}"), ("repeats", str(options.repeats)),
            ("recluster core (median)", f"{summary['core_seconds']:.2f} s  (budget < 60 s)"),
            ("bare MiniBatchKMeans fit, same k", f"{summary['bare_seconds']:.2f} s"),
            ("ratio core / bare", f"{summary['ratio']:.2f}"),
            ("peak RSS of the process", f"{summary['peak_rss_mb']:.0f} MB  (budget < 2048 MB)"),
            ("  of which the core added", f"{summary['core_memory_mb']:.0f} MB"),
            ("adjusted Rand index", f"{summary['ari']:.3f}  (budget >= 0.8)"),
            ("k chosen", ", ".join(str(r["k"]) for r in runs)),
            ("clusters matched to last run", ", ".join(f"{r['matched']}/{r['k']}" for r in runs))]
    if summary["redis_write_seconds"] is not None:
        rows.append(("assignment write to Redis", f"{summary['redis_write_seconds']:.2f} s"))
    rows.append(("budgets", "met" if passed else "NOT met"))
    width = max(len(label) for label, _v in rows)
    print()
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print("names:", "; ".join(runs[0]["names"]))
    out = Path(options.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "visitors": options.visitors,
        "repeats": options.repeats, "seed": options.seed, "cpus": os.cpu_count(), "python": platform.python_version(),
        "memory_measure": "peak RSS of the child process (getrusage ru_maxrss), data generation included",
        "summary": summary, "budgets": budgets, "passed": passed, "runs": runs}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
