"""Readable names for clusters from their strongest standardized centroid features.

A centroid coordinate of +1 means "one standard deviation above the population" for that
feature. The strongest behaviour feature gives a noun ("deep readers"), a second distinct one is
added only when two clusters would otherwise share a name, and the share of mobile visits adds
the device ("deep readers, desktop"). A cluster with no feature beyond ``MIN_STRENGTH`` is
"typical visitors".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .features import AFFINITY_FEATURE_PREFIX

#: A coordinate (in standard deviations) below this says nothing worth naming.
MIN_STRENGTH = 0.5
DEVICE_FEATURE = "mobile_share"

#: feature → (name when high, name when low); None: that direction is not worth a name.
VOCABULARY: dict[str, tuple[str | None, str | None]] = {
    "visits": ("frequent visitors", "one-time visitors"),
    "pageviews_per_visit": ("browsers", "single-page visitors"),
    "mean_scroll_depth": ("deep readers", "skimmers"),
    "mean_dwell_seconds": ("lingerers", "quick glancers"),
    "click_rate": ("clickers", "non-clickers"),
    "abandon_rate": ("abandoners", "finishers"),
    "conversion_rate": ("converters", None),
    "days_since_last_visit": ("lapsed visitors", "recent visitors"),
    DEVICE_FEATURE: ("mobile", "desktop"),
}


def feature_word(name: str, z: float) -> str | None:
    """The word for one feature in one direction, or None."""
    if name.startswith(AFFINITY_FEATURE_PREFIX):
        return f"{name[len(AFFINITY_FEATURE_PREFIX):]} fans" if z > 0 else None
    high, low = VOCABULARY.get(name, (None, None))
    return high if z > 0 else low


def strongest_features(centroid: np.ndarray, names: Sequence[str], limit: int = 3) -> list[tuple[str, float]]:
    """(feature, standardized coordinate), strongest first, at least ``MIN_STRENGTH`` away."""
    order = np.argsort(-np.abs(centroid), kind="stable")
    found = [(names[i], float(centroid[i])) for i in order if abs(centroid[i]) >= MIN_STRENGTH]
    return found[:limit]


def _words(centroid: np.ndarray, names: Sequence[str]) -> tuple[list[str], str | None]:
    """Behaviour words strongest first, and the device word (if the device share is marked)."""
    words: list[str] = []
    device = None
    for name, z in strongest_features(centroid, names, limit=len(names)):
        word = feature_word(name, z)
        if word is None:
            continue
        if name == DEVICE_FEATURE:
            device = word
        elif word not in words:
            words.append(word)
    return words, device


def cluster_names(centroids: np.ndarray, names: Sequence[str]) -> list[str]:
    """One distinct readable name per standardized centroid (rows of ``centroids``)."""
    parts = [_words(c, names) for c in centroids]

    def render(words: list[str], device: str | None, depth: int) -> str:
        head = words[:depth] or ["typical visitors"]
        return ", ".join(head + ([device] if device else []))

    result = [render(w, d, 1) for w, d in parts]
    for depth in (2, 3):
        clashes = {n for n in result if result.count(n) > 1}
        if not clashes:
            break
        result = [render(w, d, depth) if result[i] in clashes else result[i]
                  for i, (w, d) in enumerate(parts)]
    seen: dict[str, int] = {}
    unique = []
    for name in result:  # still equal: number them
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique
