"""Arm assignment: GrowthBook's hash (v2) and bucket ranges on their published vectors, and the
split of many synthetic visitors."""

import hashlib

import pytest
from scipy.stats import chisquare

from microadjust_cms.experiments.assignment import (
    bucket_ranges,
    choose_arm,
    fnv1a32,
    hash_unit,
    seed_state,
    unit_from_state,
)

# GrowthBook's SDK test cases (packages/sdk-js/test/cases.json, "hash"): [seed, value, v2 result].
GROWTHBOOK_V2 = [
    ("seed", "a", 0.0505),
    ("seed", "b", 0.2696),
    ("foo", "ab", 0.2575),
    ("foo", "def", 0.2019),
    ("89123klj", "8952klfjas09ujkasdf", 0.124),
    ("90850943850283058242805", "123", 0.7516),
    ("()**(%$##$%#$#", '___)((*":&', 0.0128),
]
# Their v1 cases (fnv1a32(value + seed) % 1000 / 1000) check the FNV-1a itself.
GROWTHBOOK_V1 = [("a", 0.22), ("b", 0.077), ("ab", 0.946), ("def", 0.652), ("8952klfjas09ujkasdf", 0.549),
                 ("123", 0.011), ('___)((*":&', 0.563)]


@pytest.mark.parametrize(("seed", "value", "expected"), GROWTHBOOK_V2)
def test_hash_v2_matches_growthbook(seed, value, expected):
    assert hash_unit(seed, value) == expected
    assert unit_from_state(seed_state(seed), value) == expected


@pytest.mark.parametrize(("value", "expected"), GROWTHBOOK_V1)
def test_fnv1a_matches_growthbook_v1(value, expected):
    assert fnv1a32(value) % 1000 / 1000 == expected


def test_fnv1a_reference_values():
    # Landon Curt Noll's FNV test suite.
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C
    assert fnv1a32("foobar") == 0xBF9CF968


def test_bucket_ranges_like_growthbook():
    # cases.json, "getBucketRange".
    assert bucket_ranges([1, 1], 1) == [(0, 0.5), (0.5, 1)]
    assert bucket_ranges([1, 1], 0.5) == [(0, 0.25), (0.5, 0.75)]
    assert bucket_ranges([1, 1], 0) == [(0, 0), (0.5, 0.5)]
    assert [tuple(round(x, 6) for x in r) for r in bucket_ranges([0.4, 0.6], 0.1)] == [(0, 0.04), (0.4, 0.46)]
    with pytest.raises(ValueError):
        bucket_ranges([0, 0])


def test_choose_arm_like_growthbook():
    # cases.json, "chooseVariation".
    assert choose_arm(0.2, [(0, 0.5), (0.5, 1)]) == 0
    assert choose_arm(0.5, [(0, 0.5), (0.5, 1)]) == 1
    assert choose_arm(0.4, [(0, 0.25), (0.5, 0.75)]) == -1
    assert choose_arm(0.5, [(0, 0.5), (0.5, 0.5), (0.5, 1)]) == 2


def synthetic_ids(n):
    return [hashlib.md5(str(i).encode()).hexdigest() for i in range(n)]


def test_20000_visitors_split_50_30_20_without_sample_ratio_mismatch():
    ranges = bucket_ranges([50, 30, 20])
    state = seed_state("a-salt")
    counts = [0, 0, 0]
    ids = synthetic_ids(20000)
    for visitor_id in ids:
        counts[choose_arm(unit_from_state(state, visitor_id), ranges)] += 1
    shares = [c / len(ids) for c in counts]
    assert shares == pytest.approx([0.5, 0.3, 0.2], abs=0.015)
    assert chisquare(counts, [10000, 6000, 4000]).pvalue > 0.001  # SRM check passes
    # Deterministic: the same ids land in the same arms again.
    again = [choose_arm(unit_from_state(state, v), ranges) for v in ids[:500]]
    assert again == [choose_arm(hash_unit("a-salt", v), ranges) for v in ids[:500]]


def test_raising_the_coverage_keeps_enrolled_visitors_in_their_arm():
    state = seed_state("s")
    low, high = bucket_ranges([1, 1], 0.2), bucket_ranges([1, 1], 0.8)
    for visitor_id in synthetic_ids(2000):
        unit = unit_from_state(state, visitor_id)
        if choose_arm(unit, low) >= 0:
            assert choose_arm(unit, high) == choose_arm(unit, low)


def test_different_salts_split_independently():
    ids = synthetic_ids(4000)
    a = [hash_unit("one", v) < 0.5 for v in ids]
    b = [hash_unit("two", v) < 0.5 for v in ids]
    both = sum(x and y for x, y in zip(a, b, strict=True)) / len(ids)
    assert both == pytest.approx(0.25, abs=0.03)
