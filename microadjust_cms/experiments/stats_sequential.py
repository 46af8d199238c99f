"""Always-valid sequential tests: the mixture sequential probability ratio test (mSPRT).

A fixed-horizon test is valid only if it is read once, at the planned sample size; a report that
editors open every day is read many times, and stopping at the first "significant" look inflates
the false positive rate far above alpha. The mSPRT gives an always-valid p-value and confidence
sequence: the chance that the p-value *ever* falls below alpha under the null, however often one
looks and whenever one stops, is at most alpha (Johari, Koomen, Pekelis & Walsh, "Always valid
inference: continuous monitoring of A/B tests", Operations Research 70(3), 2022, arXiv 1512.04922;
the method behind Optimizely's Stats Engine; Robbins 1970 for the mixture idea).

For an estimate theta_hat ~ N(theta, V) of a difference (normal approximation, V estimated from
the data) and a normal mixing distribution N(theta_0, tau^2) over the alternative, the mixture
likelihood ratio against theta = theta_0 is

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 (theta_hat - theta_0)^2 / (2 V (V + tau^2)))

The always-valid p-value is the running minimum of min(1, 1 / Lambda), and the confidence
sequence is the running intersection of {theta_0 : Lambda(theta_0) < 1 / alpha}. One look alone
(``msprt_proportions``) is still valid, only more conservative than the running versions
(``msprt_sequence``), which need the earlier looks.

The mixing scale tau is the size of effect the test is tuned for: any tau keeps the error
guarantee, but a tau near the effects one expects detects them soonest. Defaults:
``DEFAULT_TAU_PROPORTION`` = 0.01 (one percentage point, typical of web conversion lifts), and
for continuous metrics ``DEFAULT_TAU_SD`` = 0.1 standard deviations (a small standardized effect,
using the pooled standard deviation estimated from the data).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from .stats_core import check_count, check_probability, check_real, mean_and_variance

#: Mixing standard deviation for the difference of two conversion rates (absolute).
DEFAULT_TAU_PROPORTION = 0.01
#: Mixing standard deviation for continuous metrics, in pooled standard deviations.
DEFAULT_TAU_SD = 0.1


@dataclass(frozen=True)
class SequentialResult:
    """One look of an mSPRT: the estimate, the always-valid p-value and confidence interval."""

    difference: float
    variance: float
    likelihood_ratio: float
    p_value: float
    ci: tuple[float, float]
    tau: float
    alpha: float
    method: str


def _log_mixture_ratio(estimate: float, variance: float, tau: float, null: float) -> float:
    tau2 = tau * tau
    return 0.5 * math.log(variance / (variance + tau2)) + tau2 * (estimate - null) ** 2 / (
        2.0 * variance * (variance + tau2))


def msprt(estimate: float, variance: float, tau: float, alpha: float = 0.05,
          method: str = "mSPRT always-valid") -> SequentialResult:
    """mSPRT of theta = 0 for a normal estimate with the given variance (one look).

    Returns Lambda, p = min(1, 1 / Lambda) and the confidence interval of the look: theta_hat
    +- sqrt(2 V (V + tau^2) / tau^2 * log(sqrt((V + tau^2) / V) / alpha)). A variance of 0
    carries no usable information under the normal approximation: p = 1, the interval is a point.
    """
    estimate = check_real("estimate", estimate)
    variance = check_real("variance", variance)
    tau = check_real("tau", tau)
    alpha = check_probability("alpha", alpha)
    if variance < 0:
        raise ValueError(f"variance must not be negative, got {variance}")
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    label = f"{method}, tau={tau:g}"
    if variance == 0.0:
        return SequentialResult(estimate, 0.0, 1.0, 1.0, (estimate, estimate), tau, alpha, label)
    log_ratio = _log_mixture_ratio(estimate, variance, tau, 0.0)
    tau2 = tau * tau
    half = math.sqrt(2.0 * variance * (variance + tau2) / tau2
                     * (0.5 * math.log((variance + tau2) / variance) - math.log(alpha)))
    return SequentialResult(
        difference=estimate, variance=variance,
        likelihood_ratio=math.exp(min(log_ratio, 700.0)),
        p_value=min(1.0, math.exp(-log_ratio)) if log_ratio > -700.0 else 1.0,
        ci=(estimate - half, estimate + half), tau=tau, alpha=alpha, method=label)


def msprt_proportions(x_control: int, n_control: int, x_variant: int, n_variant: int, alpha: float = 0.05,
                      tau: float = DEFAULT_TAU_PROPORTION) -> SequentialResult:
    """mSPRT for the difference of two conversion rates (variant minus control), one look.

    The variance of the difference is p_c (1 - p_c) / n_c + p_v (1 - p_v) / n_v (unpooled, as in
    Johari et al.), with each rate taken as (x + 1) / (n + 2) for the variance only, so 0 % or
    100 % early on does not give a variance of 0 and a spurious infinite ratio.
    """
    xc, nc = check_count("control successes", x_control), check_count("control trials", n_control)
    xv, nv = check_count("variant successes", x_variant), check_count("variant trials", n_variant)
    if nc == 0 or nv == 0:
        raise ValueError(f"trials must be at least 1 in each arm, got {nc} and {nv}")
    if xc > nc or xv > nv:
        raise ValueError(f"successes must not exceed trials, got {xc}/{nc} and {xv}/{nv}")
    sc, sv = (xc + 1) / (nc + 2), (xv + 1) / (nv + 2)
    variance = sc * (1.0 - sc) / nc + sv * (1.0 - sv) / nv
    return msprt(xv / nv - xc / nc, variance, tau, alpha,
                 method="mSPRT always-valid (difference of proportions, normal approximation)")


def msprt_means(mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int,
                alpha: float = 0.05, tau: float | None = None) -> SequentialResult:
    """mSPRT for mean_b - mean_a (a = control) from summary statistics, one look.

    ``tau`` defaults to ``DEFAULT_TAU_SD`` times the pooled standard deviation (a plug-in, like
    the variance itself); pass an absolute tau in the metric's units to fix it in advance.
    """
    n_a, n_b = check_count("n_a", n_a), check_count("n_b", n_b)
    var_a, var_b = check_real("var_a", var_a), check_real("var_b", var_b)
    if n_a < 2 or n_b < 2:
        raise ValueError(f"need at least 2 observations per arm, got {n_a} and {n_b}")
    if var_a < 0 or var_b < 0:
        raise ValueError(f"variances must not be negative, got {var_a} and {var_b}")
    if tau is None:
        tau = DEFAULT_TAU_SD * math.sqrt((var_a + var_b) / 2.0)
        if tau == 0.0:
            tau = 1.0  # constant data: the variance is 0 and the result is p = 1 whatever tau is
    difference = check_real("mean_b", mean_b) - check_real("mean_a", mean_a)
    return msprt(difference, var_a / n_a + var_b / n_b, tau, alpha,
                 method="mSPRT always-valid (difference of means, normal approximation)")


def msprt_means_from_sums(control: tuple[int, float, float], variant: tuple[int, float, float],
                          alpha: float = 0.05, tau: float | None = None) -> SequentialResult:
    """``msprt_means`` from (n, sum, sum of squares) per arm, what reports store."""
    mean_a, var_a = mean_and_variance(*control)
    mean_b, var_b = mean_and_variance(*variant)
    return msprt_means(mean_a, var_a, control[0], mean_b, var_b, variant[0], alpha, tau)


def msprt_sequence(looks: Iterable[SequentialResult]) -> SequentialResult:
    """Combine successive looks (cumulative data, same tau and alpha) into the running result.

    The p-value is the minimum so far and the interval the intersection so far (Johari et al.,
    section 3). Should the intersection become empty (probability at most alpha), the last
    non-empty one is kept.
    """
    current: SequentialResult | None = None
    for look in looks:
        if current is None:
            current = look
            continue
        if (look.tau, look.alpha) != (current.tau, current.alpha):
            raise ValueError("all looks must use the same tau and alpha")
        low, high = max(current.ci[0], look.ci[0]), min(current.ci[1], look.ci[1])
        current = SequentialResult(
            difference=look.difference, variance=look.variance, likelihood_ratio=look.likelihood_ratio,
            p_value=min(current.p_value, look.p_value), ci=(low, high) if low <= high else current.ci,
            tau=look.tau, alpha=look.alpha, method=look.method)
    if current is None:
        raise ValueError("msprt_sequence needs at least one look")
    return current
