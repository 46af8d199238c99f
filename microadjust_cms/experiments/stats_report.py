"""``analyze``: the statistics of one experiment report, from per-arm summaries.

The first arm is the control; every other arm is compared with it (variant minus control),
the comparisons are adjusted together with Holm-Bonferroni, and each arm gets a verdict.
The report also carries the sample ratio mismatch check and the name of the method, which the
admin report shows so a reader knows exactly what was computed.

Verdicts: "better" / "worse" when the Holm-adjusted p-value is <= alpha (direction from the
sign of the difference and ``higher_is_better``), "inconclusive" otherwise, and
"not enough data" when either arm of a comparison has fewer than ``MIN_EXPOSURES_PER_ARM``
exposures or, for conversions, the two arms together have fewer than ``MIN_OUTCOMES``
conversions or fewer than ``MIN_OUTCOMES`` non-conversions (the normal approximations behind
the z-test and the mSPRT need both; 0 % or 100 % everywhere lands here). The control's verdict
is "control". Intervals are per comparison at 1 - alpha, not adjusted for multiplicity; the
verdict follows the adjusted p-value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from scipy import stats

from .stats_core import (
    ComparisonResult,
    SRMResult,
    check_count,
    check_probability,
    check_real,
    holm_bonferroni,
    mean_and_variance,
    sample_ratio_mismatch,
    two_proportion_test,
    welch_t_test,
    wilson_interval,
)
from .stats_sequential import DEFAULT_TAU_PROPORTION, DEFAULT_TAU_SD, msprt_means, msprt_proportions

METRICS = ("conversion", "continuous")
METHODS = ("fixed", "sequential")
#: Below this many exposures in either arm a comparison's verdict is "not enough data".
MIN_EXPOSURES_PER_ARM = 100
#: Conversions and non-conversions (each, over the two arms) needed for a conversion verdict.
MIN_OUTCOMES = 10
VERDICT_BETTER = "better"
VERDICT_WORSE = "worse"
VERDICT_INCONCLUSIVE = "inconclusive"
VERDICT_NOT_ENOUGH_DATA = "not enough data"
VERDICT_CONTROL = "control"


@dataclass(frozen=True)
class ArmSummary:
    """What the report needs of one arm: conversions for a conversion metric, or the sum and the
    sum of squares of the per-exposure values (e.g. dwell seconds) for a continuous one."""

    name: str
    weight: float
    exposures: int
    conversions: int | None = None
    total: float | None = None
    total_squares: float | None = None


@dataclass(frozen=True)
class ArmReport:
    """One row of the arms table. ``value`` is the rate or the mean; comparison fields are None
    for the control and where an arm has too few exposures to compute them."""

    name: str
    weight: float
    exposures: int
    conversions: int | None
    value: float | None
    interval: tuple[float, float] | None
    is_control: bool
    difference: float | None
    relative_lift: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    adjusted_p_value: float | None
    verdict: str


@dataclass(frozen=True)
class ExperimentReport:
    """Everything the report page shows; ``as_dict`` gives plain data for JSON or CSV."""

    metric: str
    method: str
    method_name: str
    alpha: float
    arms: list[ArmReport]
    srm: SRMResult
    warnings: list[str]

    def as_dict(self) -> dict:
        return asdict(self)


def _summaries(arms: Sequence[ArmSummary | Mapping], metric: str) -> list[ArmSummary]:
    result = []
    for arm in arms:
        try:
            result.append(arm if isinstance(arm, ArmSummary) else ArmSummary(**arm))
        except TypeError as exc:  # a mapping with missing or unknown keys, or not a mapping
            raise ValueError(f"each arm needs name, weight, exposures and its metric's fields: {exc}") from exc
    if len(result) < 2:
        raise ValueError(f"an experiment needs a control and at least one variant, got {len(result)} arm(s)")
    names = [arm.name for arm in result]
    if any(not isinstance(name, str) or not name for name in names) or len(set(names)) != len(names):
        raise ValueError(f"arm names must be distinct non-empty strings, got {names}")
    weights = [check_real(f"weight of {arm.name}", arm.weight) for arm in result]
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be >= 0 and sum to a positive number, got {weights}")
    for arm in result:
        exposures = check_count(f"exposures of {arm.name}", arm.exposures)
        if metric == "conversion":
            if arm.conversions is None:
                raise ValueError(f"arm {arm.name} has no conversions (needed for metric='conversion')")
            if check_count(f"conversions of {arm.name}", arm.conversions) > exposures:
                raise ValueError(f"arm {arm.name}: conversions ({arm.conversions}) exceed exposures ({exposures})")
        elif arm.total is None or arm.total_squares is None:
            raise ValueError(f"arm {arm.name} needs total and total_squares (needed for metric='continuous')")
        elif exposures >= 2:
            mean_and_variance(exposures, arm.total, arm.total_squares)  # validates the sums
        elif check_real(f"total_squares of {arm.name}", arm.total_squares) < 0:
            raise ValueError(f"arm {arm.name}: total_squares must not be negative")
    return result


def _arm_value(arm: ArmSummary, metric: str, alpha: float) -> tuple[float | None, tuple[float, float] | None]:
    n = int(arm.exposures)
    if n == 0:
        return None, None
    if metric == "conversion":
        return int(arm.conversions) / n, wilson_interval(int(arm.conversions), n, 1.0 - alpha)
    if n == 1:
        return float(arm.total), None
    mean, variance = mean_and_variance(n, arm.total, arm.total_squares)
    half = float(stats.t.ppf(1.0 - alpha / 2.0, n - 1)) * math.sqrt(variance / n)
    return mean, (mean - half, mean + half)


def _compare(control: ArmSummary, arm: ArmSummary, metric: str, method: str, alpha: float,
             tau: float | None) -> ComparisonResult | None:
    nc, nv = int(control.exposures), int(arm.exposures)
    if metric == "conversion":
        if nc == 0 or nv == 0:
            return None
        xc, xv = int(control.conversions), int(arm.conversions)
        if method == "fixed":
            return two_proportion_test(xc, nc, xv, nv, confidence=1.0 - alpha)
        seq = msprt_proportions(xc, nc, xv, nv, alpha, DEFAULT_TAU_PROPORTION if tau is None else tau)
        lift = seq.difference / (xc / nc) if xc else None
    else:
        if nc < 2 or nv < 2:
            return None
        mean_c, var_c = mean_and_variance(nc, control.total, control.total_squares)
        mean_v, var_v = mean_and_variance(nv, arm.total, arm.total_squares)
        if method == "fixed":
            return welch_t_test(mean_c, var_c, nc, mean_v, var_v, nv, confidence=1.0 - alpha)
        seq = msprt_means(mean_c, var_c, nc, mean_v, var_v, nv, alpha, tau)
        lift = seq.difference / mean_c if mean_c else None
    z = seq.difference / math.sqrt(seq.variance) if seq.variance > 0 else 0.0
    return ComparisonResult(difference=seq.difference, relative_lift=lift, statistic=z, p_value=seq.p_value,
                            ci=seq.ci, confidence=1.0 - alpha, method=seq.method)


def _enough_data(control: ArmSummary, arm: ArmSummary, metric: str) -> bool:
    if min(int(control.exposures), int(arm.exposures)) < MIN_EXPOSURES_PER_ARM:
        return False
    if metric == "continuous":
        return True
    conversions = int(control.conversions) + int(arm.conversions)
    failures = int(control.exposures) + int(arm.exposures) - conversions
    return min(conversions, failures) >= MIN_OUTCOMES


def _method_name(metric: str, method: str, comparisons: int, tau: float | None) -> str:
    if method == "fixed":
        name = ("Two-proportion z-test (pooled), Newcombe interval" if metric == "conversion"
                else "Welch t-test (Welch-Satterthwaite df)")
    elif tau is not None:
        name = f"mSPRT always-valid, tau={tau:g}"
    elif metric == "conversion":
        name = f"mSPRT always-valid, tau={DEFAULT_TAU_PROPORTION:g}"
    else:
        name = f"mSPRT always-valid, tau={DEFAULT_TAU_SD:g} pooled SD"
    if comparisons > 1:
        name += f", Holm–Bonferroni across {comparisons} comparisons"
    return name


def analyze(arms: Sequence[ArmSummary | Mapping], *, metric: str = "conversion", method: str = "fixed",
            alpha: float = 0.05, tau: float | None = None, higher_is_better: bool = True) -> ExperimentReport:
    """Analyze an experiment: the first arm is the control.

    ``arms`` are ``ArmSummary`` objects or mappings with the same keys. ``method="fixed"`` uses
    the two-proportion z-test or Welch's t-test (valid when read once, at the planned size);
    ``"sequential"`` uses the always-valid mSPRT (``tau`` overrides its mixing scale), which may
    be read at any time. Raises ``ValueError`` on bad input.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    alpha = check_probability("alpha", alpha)
    if tau is not None and check_real("tau", tau) <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    summaries = _summaries(arms, metric)
    control, variants = summaries[0], summaries[1:]
    comparisons = [_compare(control, arm, metric, method, alpha, tau) for arm in variants]
    # An arm that cannot be compared yet still counts in the family (p = 1): the adjustment
    # must not get weaker because an arm has no data.
    holm = holm_bonferroni([1.0 if c is None else c.p_value for c in comparisons], alpha)
    rows = []
    for index, arm in enumerate(summaries):
        value, interval = _arm_value(arm, metric, alpha)
        common = dict(name=arm.name, weight=float(arm.weight), exposures=int(arm.exposures),
                      conversions=None if arm.conversions is None else int(arm.conversions),
                      value=value, interval=interval)
        if index == 0:
            rows.append(ArmReport(**common, is_control=True, difference=None, relative_lift=None, ci=None,
                                  p_value=None, adjusted_p_value=None, verdict=VERDICT_CONTROL))
            continue
        result = comparisons[index - 1]
        if result is None or not _enough_data(control, arm, metric):
            verdict = VERDICT_NOT_ENOUGH_DATA
        elif holm.reject[index - 1]:
            verdict = VERDICT_BETTER if (result.difference > 0) == higher_is_better else VERDICT_WORSE
        else:
            verdict = VERDICT_INCONCLUSIVE
        rows.append(ArmReport(
            **common, is_control=False, verdict=verdict,
            difference=None if result is None else result.difference,
            relative_lift=None if result is None else result.relative_lift,
            ci=None if result is None else result.ci,
            p_value=None if result is None else result.p_value,
            adjusted_p_value=None if result is None else holm.adjusted[index - 1]))
    srm = sample_ratio_mismatch([int(arm.exposures) for arm in summaries], [float(arm.weight) for arm in summaries])
    warnings = []
    if srm.is_mismatch:
        warnings.append(f"Sample ratio mismatch (chi-square p = {srm.p_value:.2g} < {srm.threshold:g}): "
                        "arm sizes do not match the weights, so assignment or exposure logging is broken "
                        "and these results cannot be trusted.")
    return ExperimentReport(metric=metric, method=method, method_name=_method_name(metric, method, len(variants), tau),
                            alpha=alpha, arms=rows, srm=srm, warnings=warnings)
