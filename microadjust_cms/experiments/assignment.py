"""Deterministic arm assignment: GrowthBook's published hashing (v2), bucket ranges from weights.

Plain Python, no Django: the render path and the bench call these directly.

``hash_unit(seed, value) = fnv1a32(str(fnv1a32(seed + value))) % 10000 / 10000``, a number in
[0, 1) with four decimals. ``fnv1a32`` is FNV-1a, 32 bits (offset basis 2166136261, prime 16777619)
over the UTF-8 bytes (GrowthBook's SDKs hash UTF-16 code units: the same for ASCII, which every
visitor id is: 32 hex digits, or ``u<pk>`` for a logged-in user). Hashing the decimal string of
the first hash again (GrowthBook's "v2") spreads ids that differ in their last characters only.

FNV-1a reads its input one byte at a time, so the state after ``seed`` is computed once per
experiment (``seed_state``) and each visitor costs only the bytes of their id.
"""

from __future__ import annotations

from collections.abc import Sequence

FNV_OFFSET_BASIS = 0x811C9DC5
FNV_PRIME = 0x01000193
_MASK = 0xFFFFFFFF


def fnv1a32(text: str, state: int = FNV_OFFSET_BASIS) -> int:
    """FNV-1a (32 bits) of ``text``'s UTF-8 bytes, continuing from ``state``."""
    h = state
    for byte in text.encode():
        h = ((h ^ byte) * FNV_PRIME) & _MASK
    return h


def seed_state(seed: str) -> int:
    """The FNV-1a state after ``seed``: ``unit_from_state(seed_state(s), v) == hash_unit(s, v)``."""
    return fnv1a32(seed)


def unit_from_state(state: int, value: str, _prime: int = FNV_PRIME, _mask: int = _MASK) -> float:
    """``hash_unit`` with the seed already hashed (the per-request path; the constants are
    default arguments because local names are faster than globals in this loop)."""
    h = state
    for byte in value.encode():
        h = (h ^ byte) * _prime & _mask
    g = FNV_OFFSET_BASIS
    for byte in str(h).encode():
        g = (g ^ byte) * _prime & _mask
    return g % 10000 / 10000


def hash_unit(seed: str, value: str) -> float:
    """GrowthBook's hash v2: a stable number in [0, 1) for ``value`` under ``seed``."""
    return fnv1a32(str(fnv1a32(seed + value))) % 10000 / 10000


def bucket_ranges(weights: Sequence[float], coverage: float = 1.0) -> list[tuple[float, float]]:
    """One [start, end) range per arm, as GrowthBook's ``getBucketRanges``: each arm owns the
    start of its weight's slice, and ``coverage`` (the share enrolled) shrinks every slice from
    its start. Raising the coverage later keeps everybody already enrolled in their arm."""
    coverage = min(max(coverage, 0.0), 1.0)
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("weights must add up to more than 0")
    ranges, cumulative = [], 0.0
    for weight in weights:
        start = cumulative
        cumulative += weight / total
        ranges.append((start, start + coverage * weight / total))
    return ranges


def choose_arm(unit: float, ranges: Sequence[tuple[float, float]]) -> int:
    """The index of the range holding ``unit``, or -1 (not enrolled: outside the coverage)."""
    for index, (start, end) in enumerate(ranges):
        if start <= unit < end:
            return index
    return -1


def in_range(unit: float, start: float, end: float) -> bool:
    return start <= unit < end


__all__ = ["bucket_ranges", "choose_arm", "fnv1a32", "hash_unit", "in_range", "seed_state",
           "unit_from_state"]
