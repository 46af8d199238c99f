"""Fixed-horizon statistics for experiments: intervals, tests, multiplicity, SRM, sample size.

Plain functions over counts and summary statistics (no database, no Django), so a report needs
only exposures, conversions, sums and sums of squares per arm. Every function validates its
input and raises ``ValueError`` saying what was wrong; degenerate data (no conversions at all,
100 % rates, zero variance) gives finite, documented values instead of NaN.

Methods and references:
- Wilson score interval: Wilson (1927), JASA 22:209.
- Two-proportion z-test with pooled variance (the classic test, as ``statsmodels``
  ``proportions_ztest``) and Newcombe's hybrid score interval for the difference
  (Newcombe 1998, Stat. Med. 17:873, method 10), which stays inside [-1, 1] at 0 and 100 %.
- Welch's t-test with the Welch-Satterthwaite degrees of freedom (Welch 1947, Biometrika 34:28).
- Holm-Bonferroni step-down adjusted p-values (Holm 1979, Scand. J. Statist. 6:65).
- Sample ratio mismatch: Pearson chi-square goodness of fit (Fabijan et al. 2019, KDD,
  "Diagnosing sample ratio mismatch in online controlled experiments"), warning at p < 0.001.
- Sample size: normal power for Cohen's h, the arcsine effect size (Cohen 1988, ch. 6), solved
  like ``statsmodels`` ``NormalIndPower`` (both tails counted).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from scipy import optimize, stats

#: A sample ratio mismatch is reported below this chi-square p-value (issue 5; Fabijan et al.).
SRM_P_THRESHOLD = 0.001
_STANDARD_NORMAL = NormalDist()  # stdlib quantiles: scipy's per-call overhead is 10x the work here


def check_count(name: str, value: object) -> int:
    """Return ``value`` as an int if it is a whole number >= 0, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, numbers.Integral):
        result = int(value)
    elif math.isfinite(value) and float(value).is_integer():
        result = int(value)
    else:
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if result < 0:
        raise ValueError(f"{name} must not be negative, got {result}")
    return result


def check_real(name: str, value: object) -> float:
    """Return ``value`` as a finite float, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_probability(name: str, value: object) -> float:
    """A level such as alpha, confidence or power: strictly between 0 and 1."""
    result = check_real(name, value)
    if not 0.0 < result < 1.0:
        raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {result}")
    return result


def _check_successes(successes: object, trials: object, what: str = "") -> tuple[int, int]:
    x = check_count(f"{what}successes", successes)
    n = check_count(f"{what}trials", trials)
    if n == 0:
        raise ValueError(f"{what}trials must be at least 1, got 0")
    if x > n:
        raise ValueError(f"{what}successes ({x}) must not exceed {what}trials ({n})")
    return x, n


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (no continuity correction).

    Chosen over the Wald interval because it keeps its coverage at small counts and at rates
    near 0 or 1, and never leaves [0, 1] (Brown, Cai & DasGupta 2001, Stat. Sci. 16:101).
    """
    x, n = _check_successes(successes, trials)
    z = _STANDARD_NORMAL.inv_cdf(0.5 + check_probability("confidence", confidence) / 2.0)
    z2 = z * z
    centre = (x + z2 / 2.0) / (n + z2)
    half = z / (n + z2) * math.sqrt(x * (n - x) / n + z2 / 4.0)
    # At x = 0 (x = n) the lower (upper) end is exactly 0 (1); say so rather than round near it.
    low = 0.0 if x == 0 else max(0.0, centre - half)
    high = 1.0 if x == n else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class ComparisonResult:
    """A variant against control: ``difference`` is variant minus control.

    ``relative_lift`` is ``difference / control`` (None when the control value is 0);
    ``statistic`` is z or t; ``df`` the degrees of freedom (None for z); ``ci`` the interval
    of the difference at ``confidence``; ``method`` names the test and the interval.
    """

    difference: float
    relative_lift: float | None
    statistic: float
    p_value: float
    ci: tuple[float, float]
    confidence: float
    method: str
    df: float | None = None


def two_proportion_test(x_control: int, n_control: int, x_variant: int, n_variant: int,
                        confidence: float = 0.95) -> ComparisonResult:
    """Two-sided two-proportion z-test (pooled variance) and Newcombe's interval of the difference.

    The pooled z-test is the textbook test of equal rates (``statsmodels.proportions_ztest``).
    The interval is Newcombe's hybrid score interval built from the two Wilson intervals, not
    the Wald interval, which collapses to a point at 0 % or 100 %. When both arms have the same
    rate of 0 or 1, the pooled variance is 0: there is no evidence of a difference, so z = 0 and
    p = 1 (statsmodels returns NaN there).
    """
    xc, nc = _check_successes(x_control, n_control, "control ")
    xv, nv = _check_successes(x_variant, n_variant, "variant ")
    confidence = check_probability("confidence", confidence)
    pc, pv = xc / nc, xv / nv
    difference = pv - pc
    pooled = (xc + xv) / (nc + nv)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / nc + 1.0 / nv))
    if se == 0.0:
        z, p_value = 0.0, 1.0
    else:
        z = difference / se
        p_value = math.erfc(abs(z) / math.sqrt(2.0))  # two-sided normal tail, 2 * Phi(-|z|)
    lc, uc = wilson_interval(xc, nc, confidence)
    lv, uv = wilson_interval(xv, nv, confidence)
    low = difference - math.sqrt((pv - lv) ** 2 + (uc - pc) ** 2)
    high = difference + math.sqrt((uv - pv) ** 2 + (pc - lc) ** 2)
    return ComparisonResult(
        difference=difference, relative_lift=difference / pc if pc > 0 else None, statistic=z,
        p_value=p_value, ci=(low, high), confidence=confidence,
        method="Two-proportion z-test (pooled), Newcombe hybrid score interval")


def mean_and_variance(n: int, total: float, total_squares: float) -> tuple[float, float]:
    """Mean and sample variance (ddof=1) from a count, a sum and a sum of squares.

    Reports keep only these three numbers per arm. Rounding can make the variance of constant
    data slightly negative; it is clamped to 0. Inconsistent sums (sum of squares below
    sum**2 / n beyond rounding) raise ``ValueError``.
    """
    n = check_count("n", n)
    total = check_real("sum", total)
    total_squares = check_real("sum of squares", total_squares)
    if n < 2:
        raise ValueError(f"a variance needs at least 2 observations, got {n}")
    if total_squares < 0:
        raise ValueError(f"sum of squares must not be negative, got {total_squares}")
    mean = total / n
    deviation = total_squares - total * mean
    if deviation < -1e-9 * max(total_squares, 1.0):
        raise ValueError(f"sum of squares {total_squares} is less than sum**2/n = {total * mean}: inconsistent sums")
    return mean, max(deviation, 0.0) / (n - 1)


def welch_t_test(mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int,
                 confidence: float = 0.95) -> ComparisonResult:
    """Welch's two-sided t-test of mean_b - mean_a from summary statistics (a = control).

    Variances are sample variances (ddof=1). Welch's test does not assume equal variances,
    which rarely hold between arms. If both variances are 0 the means are exact: equal means
    give t = 0, p = 1; different means give t = +-inf, p = 0, and df = n_a + n_b - 2.
    """
    mean_a, mean_b = check_real("mean_a", mean_a), check_real("mean_b", mean_b)
    var_a, var_b = check_real("var_a", var_a), check_real("var_b", var_b)
    n_a, n_b = check_count("n_a", n_a), check_count("n_b", n_b)
    confidence = check_probability("confidence", confidence)
    if var_a < 0 or var_b < 0:
        raise ValueError(f"variances must not be negative, got {var_a} and {var_b}")
    if n_a < 2 or n_b < 2:
        raise ValueError(f"Welch's t-test needs at least 2 observations per arm, got {n_a} and {n_b}")
    difference = mean_b - mean_a
    sa, sb = var_a / n_a, var_b / n_b
    se = math.sqrt(sa + sb)
    if se == 0.0:
        df = float(n_a + n_b - 2)
        t = 0.0 if difference == 0 else math.copysign(math.inf, difference)
        p_value = 1.0 if difference == 0 else 0.0
        ci = (difference, difference)
    else:
        df = (sa + sb) ** 2 / (sa**2 / (n_a - 1) + sb**2 / (n_b - 1))
        t = difference / se
        p_value = float(2.0 * stats.t.sf(abs(t), df))
        half = float(stats.t.ppf(0.5 + confidence / 2.0, df)) * se
        ci = (difference - half, difference + half)
    return ComparisonResult(
        difference=difference, relative_lift=difference / mean_a if mean_a != 0 else None, statistic=t,
        p_value=p_value, ci=ci, confidence=confidence, df=df,
        method="Welch t-test (Welch-Satterthwaite df)")


def welch_t_test_arrays(control: Sequence[float], variant: Sequence[float],
                        confidence: float = 0.95) -> ComparisonResult:
    """Welch's t-test of mean(variant) - mean(control) from raw observations."""
    a = np.asarray(control, dtype=float)
    b = np.asarray(variant, dtype=float)
    if a.ndim != 1 or b.ndim != 1 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("observations must be flat sequences of finite numbers")
    if a.size < 2 or b.size < 2:
        raise ValueError(f"Welch's t-test needs at least 2 observations per arm, got {a.size} and {b.size}")
    return welch_t_test(float(a.mean()), float(a.var(ddof=1)), a.size,
                        float(b.mean()), float(b.var(ddof=1)), b.size, confidence)


@dataclass(frozen=True)
class HolmResult:
    """Holm-adjusted p-values (input order) and whether each hypothesis is rejected at alpha."""

    adjusted: list[float]
    reject: list[bool]
    alpha: float


def holm_bonferroni(p_values: Sequence[float], alpha: float = 0.05) -> HolmResult:
    """Holm's step-down adjustment: controls the family-wise error rate for any dependence.

    The i-th smallest p-value (0-based) is multiplied by m - i, capped at 1, and made monotone
    by a running maximum, so adjusted p-values never decrease with the raw ones. A hypothesis
    is rejected when its adjusted p-value is <= alpha. Uniformly more powerful than Bonferroni.
    """
    alpha = check_probability("alpha", alpha)
    values = [check_real("p-value", p) for p in p_values]
    for p in values:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-values must be between 0 and 1, got {p}")
    m = len(values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=values.__getitem__)):
        running = max(running, min(1.0, (m - rank) * values[index]))
        adjusted[index] = running
    return HolmResult(adjusted=adjusted, reject=[p <= alpha for p in adjusted], alpha=alpha)


@dataclass(frozen=True)
class SRMResult:
    """Sample ratio mismatch check: Pearson chi-square statistic, its p-value, and the warning."""

    chi2: float
    p_value: float
    is_mismatch: bool
    threshold: float = SRM_P_THRESHOLD


def sample_ratio_mismatch(observed_counts: Sequence[int], expected_weights: Sequence[float]) -> SRMResult:
    """Chi-square goodness of fit of the observed arm sizes against the configured weights.

    A mismatch (p < 0.001) means assignment or exposure logging is broken, so no comparison in
    the experiment can be trusted. Arms with weight 0 are left out of the test unless they
    received visitors (then it is a mismatch by definition). No visitors at all: no mismatch.
    """
    counts = [check_count("observed count", c) for c in observed_counts]
    weights = [check_real("weight", w) for w in expected_weights]
    if len(counts) != len(weights):
        raise ValueError(f"{len(counts)} observed counts but {len(weights)} weights")
    if len(counts) < 2:
        raise ValueError("a sample ratio check needs at least 2 arms")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be >= 0 and sum to a positive number, got {weights}")
    if any(c > 0 and w == 0 for c, w in zip(counts, weights, strict=True)):
        return SRMResult(chi2=math.inf, p_value=0.0, is_mismatch=True)
    kept = [(c, w) for c, w in zip(counts, weights, strict=True) if w > 0]
    total = sum(c for c, _ in kept)
    if total == 0 or len(kept) < 2:
        return SRMResult(chi2=0.0, p_value=1.0, is_mismatch=False)
    weight_sum = sum(w for _, w in kept)
    expected = [total * w / weight_sum for _, w in kept]
    chi2, p_value = stats.chisquare([c for c, _ in kept], expected)
    return SRMResult(chi2=float(chi2), p_value=float(p_value), is_mismatch=bool(p_value < SRM_P_THRESHOLD))


@dataclass(frozen=True)
class SampleSize:
    """Visitors needed per arm (equal split) and in total, with the assumptions used."""

    per_arm: int
    total: int
    baseline_rate: float
    variant_rate: float
    alpha_per_comparison: float
    power: float
    effect_size_h: float


def sample_size_per_arm(baseline_rate: float, minimum_detectable_effect: float, power: float = 0.8,
                        alpha: float = 0.05, relative: bool = True, arms: int = 2) -> SampleSize:
    """Exposures per arm for a two-sided two-proportion test to detect the given effect.

    ``minimum_detectable_effect`` is relative to the baseline by default (0.1 means 10 % -> 11 %);
    with ``relative=False`` it is absolute (0.01 means 10 % -> 11 %). It may be negative. With
    more than two arms each of the ``arms - 1`` comparisons against control gets alpha / (arms - 1)
    (Bonferroni): Holm, used on the report, is never less powerful, so the size is sufficient.
    The effect is Cohen's h = 2 asin(sqrt(p2)) - 2 asin(sqrt(p1)); n solves
    Phi(h sqrt(n/2) - z) + Phi(-h sqrt(n/2) - z) = power with z = z_(1 - alpha/2), as
    ``statsmodels.stats.power.NormalIndPower``; the result is rounded up.
    """
    baseline_rate = check_probability("baseline rate", baseline_rate)
    mde = check_real("minimum detectable effect", minimum_detectable_effect)
    power = check_probability("power", power)
    alpha = check_probability("alpha", alpha)
    arms = check_count("arms", arms)
    if arms < 2:
        raise ValueError(f"an experiment needs at least 2 arms, got {arms}")
    if mde == 0:
        raise ValueError("the minimum detectable effect must not be 0")
    variant_rate = baseline_rate * (1.0 + mde) if relative else baseline_rate + mde
    if not 0.0 < variant_rate < 1.0:
        raise ValueError(f"baseline {baseline_rate} with effect {mde} gives a rate of {variant_rate}, outside (0, 1)")
    alpha_each = alpha / (arms - 1)
    if power <= alpha_each:
        raise ValueError(f"power ({power}) must exceed the per-comparison alpha ({alpha_each})")
    h = abs(2.0 * math.asin(math.sqrt(variant_rate)) - 2.0 * math.asin(math.sqrt(baseline_rate)))
    z = stats.norm.isf(alpha_each / 2.0)

    def shortfall(n: float) -> float:
        shift = h * math.sqrt(n / 2.0)
        return float(stats.norm.cdf(shift - z) + stats.norm.cdf(-shift - z)) - power

    # Counting one tail only gives the closed form, an upper bound; at n -> 0 power is alpha.
    one_tail = 2.0 * ((z + stats.norm.ppf(power)) / h) ** 2
    n = optimize.brentq(shortfall, 1e-12, one_tail * 1.01 + 1.0, xtol=1e-10)
    per_arm = math.ceil(n - 1e-9)
    return SampleSize(per_arm=per_arm, total=per_arm * arms, baseline_rate=baseline_rate, variant_rate=variant_rate,
                      alpha_per_comparison=alpha_each, power=power, effect_size_h=h)
