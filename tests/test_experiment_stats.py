"""Experiment statistics against scipy / statsmodels on known vectors, by simulation, and on bad input."""

import json
import math

import numpy as np
import pytest
from scipy import integrate, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, zt_ind_solve_power
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)

from microadjust_cms.experiments.stats import (
    DEFAULT_TAU_PROPORTION,
    ArmSummary,
    analyze,
    holm_bonferroni,
    mean_and_variance,
    msprt,
    msprt_means_from_sums,
    msprt_proportions,
    msprt_sequence,
    sample_ratio_mismatch,
    sample_size_per_arm,
    two_proportion_test,
    welch_t_test,
    welch_t_test_arrays,
    wilson_interval,
)

PROPORTION_VECTORS = [(0, 10), (10, 10), (1, 1), (0, 1), (3, 7), (37, 120), (500, 5000), (1, 100_000)]
TWO_ARM_VECTORS = [(500, 5000, 600, 5100), (37, 120, 20, 130), (0, 100, 5, 100), (99, 100, 100, 100),
                   (1, 3, 2, 3), (12_000, 100_000, 12_450, 100_000)]


def _no_nan(value):
    """Every float in a nested report is finite or deliberately infinite, never NaN."""
    if isinstance(value, float):
        assert not math.isnan(value)
    elif isinstance(value, dict):
        for item in value.values():
            _no_nan(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _no_nan(item)


# Wilson interval -----------------------------------------------------------------------------

@pytest.mark.parametrize("successes,trials", PROPORTION_VECTORS)
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_matches_statsmodels(successes, trials, confidence):
    expected = proportion_confint(successes, trials, alpha=1 - confidence, method="wilson")
    assert wilson_interval(successes, trials, confidence) == pytest.approx(expected, abs=1e-12)


def test_wilson_stays_in_unit_interval_and_narrows_with_trials():
    assert wilson_interval(0, 50)[0] == 0.0
    assert wilson_interval(50, 50)[1] == 1.0
    low_small, high_small = wilson_interval(10, 100)
    low_big, high_big = wilson_interval(1000, 10_000)
    assert high_big - low_big < high_small - low_small


# Two-proportion test -------------------------------------------------------------------------

@pytest.mark.parametrize("xc,nc,xv,nv", TWO_ARM_VECTORS)
def test_two_proportion_test_matches_statsmodels(xc, nc, xv, nv):
    result = two_proportion_test(xc, nc, xv, nv)
    z, p = proportions_ztest([xv, xc], [nv, nc])
    assert result.statistic == pytest.approx(z, rel=1e-10)
    assert result.p_value == pytest.approx(p, rel=1e-9, abs=1e-300)
    assert result.difference == pytest.approx(xv / nv - xc / nc)
    expected_ci = confint_proportions_2indep(xv, nv, xc, nc, method="newcomb", compare="diff", alpha=0.05)
    assert result.ci == pytest.approx(expected_ci, abs=1e-10)
    assert result.relative_lift == (pytest.approx((xv / nv) / (xc / nc) - 1) if xc else None)
    assert "Newcombe" in result.method


def test_two_proportion_test_confidence_level_widens_interval():
    narrow = two_proportion_test(500, 5000, 600, 5100, confidence=0.9).ci
    wide = two_proportion_test(500, 5000, 600, 5100, confidence=0.99).ci
    assert wide[0] < narrow[0] and wide[1] > narrow[1]
    expected = confint_proportions_2indep(600, 5100, 500, 5000, method="newcomb", alpha=0.01)
    assert wide == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("x", [0, 100])
def test_two_proportion_test_identical_extreme_rates_give_no_evidence(x):
    result = two_proportion_test(x, 100, x, 100)
    assert (result.statistic, result.p_value, result.difference) == (0.0, 1.0, 0.0)
    low, high = result.ci
    assert -1.0 <= low < 0.0 < high <= 1.0


def test_two_proportion_test_zero_against_all():
    result = two_proportion_test(0, 100, 100, 100)
    assert result.p_value < 1e-40 and result.relative_lift is None
    assert result.ci[1] == pytest.approx(1.0) and result.ci[0] > 0.9


# Welch t-test --------------------------------------------------------------------------------

@pytest.mark.parametrize("seed,size_a,size_b,shift,scale_b", [(1, 30, 45, 0.3, 2.0), (2, 5, 200, 0.0, 0.5),
                                                              (3, 1000, 800, -0.05, 1.0), (4, 2, 3, 1.0, 3.0)])
def test_welch_matches_scipy_on_raw_arrays(seed, size_a, size_b, shift, scale_b):
    rng = np.random.default_rng(seed)
    a = rng.normal(10.0, 1.0, size_a)
    b = rng.normal(10.0 + shift, scale_b, size_b)
    result = welch_t_test_arrays(a, b)
    expected = stats.ttest_ind(b, a, equal_var=False)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert result.df == pytest.approx(expected.df, rel=1e-10)
    ci = expected.confidence_interval(0.95)
    assert result.ci == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert result.difference == pytest.approx(b.mean() - a.mean())


def test_welch_from_sums_equals_raw_arrays():
    rng = np.random.default_rng(7)
    a, b = rng.exponential(30.0, 500), rng.exponential(33.0, 480)  # dwell-like, skewed
    mean_a, var_a = mean_and_variance(a.size, a.sum(), (a**2).sum())
    mean_b, var_b = mean_and_variance(b.size, b.sum(), (b**2).sum())
    from_sums = welch_t_test(mean_a, var_a, a.size, mean_b, var_b, b.size)
    from_arrays = welch_t_test_arrays(a, b)
    assert from_sums.p_value == pytest.approx(from_arrays.p_value, rel=1e-8)
    assert from_sums.ci == pytest.approx(from_arrays.ci, rel=1e-8)


def test_welch_zero_variance():
    same = welch_t_test(5.0, 0.0, 10, 5.0, 0.0, 12)
    assert (same.statistic, same.p_value, same.ci) == (0.0, 1.0, (0.0, 0.0))
    different = welch_t_test(5.0, 0.0, 10, 6.0, 0.0, 12)
    assert different.statistic == math.inf and different.p_value == 0.0 and different.df == 20
    one_sided = welch_t_test(5.0, 0.0, 10, 6.0, 4.0, 12)
    assert one_sided.df == pytest.approx(11.0)  # only the varying arm contributes: n_b - 1


# Holm-Bonferroni -----------------------------------------------------------------------------

@pytest.mark.parametrize("p_values", [[0.01, 0.04, 0.03, 0.005], [0.2, 0.2, 0.01], [1.0, 1.0], [0.0, 0.5],
                                      [0.049], [0.011, 0.02, 0.03, 0.04, 0.05, 0.9], [0.3, 0.001, 0.3, 0.02]])
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_holm_matches_statsmodels(p_values, alpha):
    reject, adjusted, _, _ = multipletests(p_values, alpha=alpha, method="holm")
    result = holm_bonferroni(p_values, alpha)
    assert result.adjusted == pytest.approx(list(adjusted), abs=1e-15)
    assert result.reject == list(reject)


def test_holm_is_monotone_in_the_raw_p_values():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 0.2, 25)
    adjusted = holm_bonferroni(p).adjusted
    order = np.argsort(p)
    assert all(np.diff(np.asarray(adjusted)[order]) >= 0)
    assert all(a >= raw for a, raw in zip(adjusted, p, strict=True))


def test_holm_of_nothing():
    assert holm_bonferroni([]).adjusted == []


# Sample ratio mismatch -----------------------------------------------------------------------

@pytest.mark.parametrize("counts,weights", [([5000, 5100], [1, 1]), ([821_588, 815_482], [50, 50]),
                                            ([3300, 3350, 3400], [1, 1, 1]), ([800, 150, 50], [0.8, 0.15, 0.05]),
                                            ([980, 1020, 2000], [25, 25, 50])])
def test_srm_matches_scipy_chisquare(counts, weights):
    total = sum(counts)
    expected = stats.chisquare(counts, [total * w / sum(weights) for w in weights])
    result = sample_ratio_mismatch(counts, weights)
    assert result.chi2 == pytest.approx(expected.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert result.is_mismatch == (expected.pvalue < 0.001)


def test_srm_flags_the_published_example_and_passes_a_fair_split():
    # Fabijan et al. 2019: 821,588 vs 815,482 on a 50/50 split is a mismatch (p about 1.8e-6).
    assert sample_ratio_mismatch([821_588, 815_482], [1, 1]).is_mismatch
    rng = np.random.default_rng(11)
    fair = rng.multinomial(30_000, [0.5, 0.3, 0.2])
    assert not sample_ratio_mismatch(list(fair), [5, 3, 2]).is_mismatch


def test_srm_degenerate_cases():
    assert sample_ratio_mismatch([0, 0, 0], [1, 1, 1]).p_value == 1.0
    assert sample_ratio_mismatch([10, 0], [1, 0]).is_mismatch is False  # the weight-0 arm is left out
    assert sample_ratio_mismatch([10, 3], [1, 0]).is_mismatch is True  # an arm that should get nobody


# Sample size ---------------------------------------------------------------------------------

@pytest.mark.parametrize("baseline,mde,relative,power,alpha", [
    (0.1, 0.1, True, 0.8, 0.05), (0.05, 0.2, True, 0.9, 0.05), (0.3, 0.02, False, 0.8, 0.01),
    (0.02, -0.25, True, 0.8, 0.1), (0.5, 0.05, False, 0.95, 0.05),
])
def test_sample_size_matches_statsmodels(baseline, mde, relative, power, alpha):
    variant = baseline * (1 + mde) if relative else baseline + mde
    h = proportion_effectsize(variant, baseline)
    expected = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=1.0)
    also = zt_ind_solve_power(effect_size=h, alpha=alpha, power=power)
    result = sample_size_per_arm(baseline, mde, power=power, alpha=alpha, relative=relative)
    assert result.per_arm == math.ceil(expected) == math.ceil(also)
    assert result.total == 2 * result.per_arm
    assert result.variant_rate == pytest.approx(variant)


def test_sample_size_more_arms_uses_bonferroni():
    three = sample_size_per_arm(0.1, 0.1, arms=3)
    expected = NormalIndPower().solve_power(effect_size=proportion_effectsize(0.11, 0.1), alpha=0.025, power=0.8)
    assert three.per_arm == math.ceil(expected) > sample_size_per_arm(0.1, 0.1).per_arm
    assert three.total == 3 * three.per_arm and three.alpha_per_comparison == 0.025


def test_sample_size_gives_the_promised_power_with_the_z_test():
    """Simulate experiments of the computed size: the pooled z-test detects the effect about 80 % of the time."""
    size = sample_size_per_arm(0.1, 0.2).per_arm
    rng = np.random.default_rng(5)
    runs = 3000
    control = rng.binomial(size, 0.1, runs)
    variant = rng.binomial(size, 0.12, runs)
    detected = np.mean([two_proportion_test(c, size, v, size).p_value < 0.05
                        for c, v in zip(control, variant, strict=True)])
    assert abs(detected - 0.8) < 3 * math.sqrt(0.8 * 0.2 / runs)


# mSPRT ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("estimate,variance,tau", [(0.01, 1e-5, 0.01), (-0.03, 4e-4, 0.02), (0.0, 1e-4, 0.05),
                                                   (0.5, 0.2, 1.0)])
def test_msprt_ratio_is_the_normal_mixture_integral(estimate, variance, tau):
    """Lambda = integral of N(estimate; theta, V) / N(estimate; 0, V) over theta ~ N(0, tau^2)."""
    sd = math.sqrt(variance)

    def integrand(theta):
        return (stats.norm.pdf(estimate, theta, sd) / stats.norm.pdf(estimate, 0.0, sd)) * stats.norm.pdf(theta, 0, tau)

    expected, _ = integrate.quad(integrand, -12 * tau, 12 * tau, points=[estimate], limit=200)
    result = msprt(estimate, variance, tau)
    assert result.likelihood_ratio == pytest.approx(expected, rel=1e-6)
    assert result.p_value == pytest.approx(min(1.0, 1.0 / expected), rel=1e-6)


def test_msprt_interval_ends_where_the_ratio_reaches_one_over_alpha():
    result = msprt(0.02, 5e-5, 0.01, alpha=0.05)
    for end in result.ci:  # testing theta_0 = end is testing estimate - end = 0 shifted
        assert msprt(0.02 - end, 5e-5, 0.01).likelihood_ratio == pytest.approx(20.0, rel=1e-9)
    assert (result.p_value <= 0.05) == (not result.ci[0] <= 0.0 <= result.ci[1])


def _peeking_simulation(rate_control, rate_variant, sims=2000, looks=40, step=250, seed=20240605):
    rng = np.random.default_rng(seed)
    control = rng.binomial(step, rate_control, (sims, looks)).cumsum(axis=1)
    variant = rng.binomial(step, rate_variant, (sims, looks)).cumsum(axis=1)
    sequential = peeking = final = 0
    for xc, xv in zip(control, variant, strict=True):
        results = [(msprt_proportions(c, step * (k + 1), v, step * (k + 1)).p_value,
                    two_proportion_test(c, step * (k + 1), v, step * (k + 1)).p_value)
                   for k, (c, v) in enumerate(zip(xc, xv, strict=True))]
        sequential += any(seq <= 0.05 for seq, _ in results)
        peeking += any(fixed <= 0.05 for _, fixed in results)
        final += results[-1][1] <= 0.05
    return sequential / sims, peeking / sims, final / sims


def test_msprt_keeps_the_false_positive_rate_under_continuous_peeking():
    """A/A test looked at 40 times: mSPRT stays at or below alpha, the peeking z-test does not."""
    sims = 2000
    slack = 3 * math.sqrt(0.05 * 0.95 / sims)
    sequential, peeking, final = _peeking_simulation(0.1, 0.1, sims=sims)
    assert sequential <= 0.05 + slack
    assert abs(final - 0.05) <= slack  # one look at the planned size: the z-test is fine
    assert peeking > 0.15  # stopping at the first significant look: far above alpha


def test_msprt_detects_a_real_effect():
    sequential, _, _ = _peeking_simulation(0.10, 0.13, sims=300, seed=3)
    assert sequential > 0.9


def test_msprt_sequence_takes_running_minimum_and_intersection():
    looks = [msprt_proportions(50, 500, 70, 500), msprt_proportions(100, 1000, 150, 1000),
             msprt_proportions(210, 2000, 250, 2000)]
    combined = msprt_sequence(looks)
    assert combined.p_value == min(look.p_value for look in looks) < looks[-1].p_value
    assert combined.ci == (max(look.ci[0] for look in looks), min(look.ci[1] for look in looks))
    assert combined.difference == looks[-1].difference
    with pytest.raises(ValueError, match="same tau"):
        msprt_sequence([looks[0], msprt_proportions(50, 500, 70, 500, tau=0.05)])


def test_msprt_degenerate_proportions_stay_finite():
    for args in [(0, 10, 0, 10), (10, 10, 10, 10), (0, 1, 1, 1)]:
        result = msprt_proportions(*args)
        assert 0.0 < result.p_value <= 1.0 and all(math.isfinite(end) for end in result.ci)
    assert msprt_proportions(0, 1, 1, 1).p_value > 0.99  # one visitor each proves nothing


def test_msprt_means_from_sums():
    rng = np.random.default_rng(9)
    a, b = rng.normal(30, 10, 4000), rng.normal(32, 10, 4000)
    result = msprt_means_from_sums((a.size, a.sum(), (a**2).sum()), (b.size, b.sum(), (b**2).sum()))
    assert result.p_value < 0.05 and result.ci[0] < b.mean() - a.mean() < result.ci[1]
    assert result.tau == pytest.approx(0.1 * math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2))


# analyze -------------------------------------------------------------------------------------

THREE_ARMS = [{"name": "control", "weight": 1, "exposures": 5000, "conversions": 500},
              {"name": "bold", "weight": 1, "exposures": 5100, "conversions": 600},
              {"name": "calm", "weight": 1, "exposures": 4950, "conversions": 400}]


def test_analyze_conversion_fixed():
    report = analyze(THREE_ARMS)
    control, bold, calm = report.arms
    assert control.verdict == "control" and control.p_value is None
    assert control.interval == pytest.approx(proportion_confint(500, 5000, method="wilson"))
    raw = [proportions_ztest([600, 500], [5100, 5000])[1], proportions_ztest([400, 500], [4950, 5000])[1]]
    assert [bold.p_value, calm.p_value] == pytest.approx(raw, rel=1e-9)
    _, adjusted, _, _ = multipletests(raw, method="holm")
    assert [bold.adjusted_p_value, calm.adjusted_p_value] == pytest.approx(list(adjusted), rel=1e-9)
    assert (bold.verdict, calm.verdict) == ("better", "worse")
    assert bold.ci == pytest.approx(confint_proportions_2indep(600, 5100, 500, 5000, method="newcomb"), abs=1e-10)
    assert report.method_name == ("Two-proportion z-test (pooled), Newcombe interval, "
                                  "Holm–Bonferroni across 2 comparisons")
    assert not report.srm.is_mismatch and report.warnings == []
    json.dumps(report.as_dict(), allow_nan=False)


def test_analyze_lower_is_better_flips_verdicts():
    _, bold, calm = analyze(THREE_ARMS, higher_is_better=False).arms
    assert (bold.verdict, calm.verdict) == ("worse", "better")


def test_analyze_inconclusive_when_only_the_unadjusted_p_is_small():
    arms = [ArmSummary("control", 1, 4000, 400), ArmSummary("b", 1, 4000, 458), ArmSummary("c", 1, 4000, 460)]
    alone = analyze(arms[:2])
    assert 0.025 < alone.arms[1].p_value < 0.05 and alone.arms[1].verdict == "better"
    report = analyze(arms)
    assert all(0.025 < arm.p_value < 0.05 for arm in report.arms[1:])
    # Holm: the smaller p is doubled (> 0.05), so nothing is rejected
    assert [arm.verdict for arm in report.arms[1:]] == ["inconclusive", "inconclusive"]
    assert report.arms[2].adjusted_p_value == pytest.approx(2 * report.arms[2].p_value)


def test_analyze_continuous_fixed_matches_scipy():
    rng = np.random.default_rng(21)
    data = {"control": rng.exponential(30, 800), "longer": rng.exponential(36, 820)}
    arms = [{"name": name, "weight": 1, "exposures": len(x), "total": float(x.sum()),
             "total_squares": float((x**2).sum())} for name, x in data.items()]
    report = analyze(arms, metric="continuous")
    control, longer = report.arms
    expected = stats.ttest_ind(data["longer"], data["control"], equal_var=False)
    assert longer.p_value == pytest.approx(expected.pvalue, rel=1e-8)
    ci = expected.confidence_interval(0.95)
    assert longer.ci == pytest.approx((ci.low, ci.high), rel=1e-8)
    mean_ci = stats.ttest_1samp(data["control"], 0).confidence_interval(0.95)
    assert control.interval == pytest.approx((mean_ci.low, mean_ci.high), rel=1e-9)
    assert longer.verdict == "better" and report.method_name == "Welch t-test (Welch-Satterthwaite df)"


def test_analyze_sequential_names_its_method_and_is_more_conservative():
    fixed = analyze(THREE_ARMS)
    sequential = analyze(THREE_ARMS, method="sequential")
    assert sequential.method_name == (f"mSPRT always-valid, tau={DEFAULT_TAU_PROPORTION:g}, "
                                      "Holm–Bonferroni across 2 comparisons")
    for fixed_arm, seq_arm in zip(fixed.arms[1:], sequential.arms[1:], strict=True):
        assert seq_arm.p_value > fixed_arm.p_value
        assert seq_arm.ci[1] - seq_arm.ci[0] > fixed_arm.ci[1] - fixed_arm.ci[0]
    assert analyze(THREE_ARMS, method="sequential", tau=0.05).method_name.startswith("mSPRT always-valid, tau=0.05,")
    continuous = [{"name": n, "weight": 1, "exposures": 1000, "total": t, "total_squares": s}
                  for n, t, s in [("a", 30_000.0, 1_000_000.0), ("b", 31_000.0, 1_060_000.0)]]
    report = analyze(continuous, metric="continuous", method="sequential")
    assert report.method_name == "mSPRT always-valid, tau=0.1 pooled SD"
    assert 0 < report.arms[1].p_value <= 1


def test_analyze_srm_warning():
    arms = [{"name": "control", "weight": 50, "exposures": 821_588, "conversions": 8000},
            {"name": "b", "weight": 50, "exposures": 815_482, "conversions": 8100}]
    report = analyze(arms)
    assert report.srm.is_mismatch and "Sample ratio mismatch" in report.warnings[0]


@pytest.mark.parametrize("conversions", [(0, 0, 0), (5000, 5000, 5000)])
@pytest.mark.parametrize("method", ["fixed", "sequential"])
def test_analyze_degenerate_rates_have_a_verdict_and_no_nan(conversions, method):
    arms = [{"name": f"arm{i}", "weight": 1, "exposures": 5000, "conversions": c} for i, c in enumerate(conversions)]
    report = analyze(arms, method=method)
    assert [arm.verdict for arm in report.arms] == ["control", "not enough data", "not enough data"]
    assert all(arm.p_value == 1.0 and arm.difference == 0.0 for arm in report.arms[1:])
    _no_nan(report.as_dict())
    json.dumps(report.as_dict(), allow_nan=False)


def test_analyze_small_and_empty_arms():
    arms = [{"name": "control", "weight": 1, "exposures": 99, "conversions": 40},
            {"name": "b", "weight": 1, "exposures": 120, "conversions": 90},
            {"name": "new", "weight": 1, "exposures": 0, "conversions": 0}]
    report = analyze(arms)
    _, small, empty = report.arms
    assert small.verdict == "not enough data" and small.p_value is not None  # numbers shown, no verdict
    assert empty.verdict == "not enough data"
    assert (empty.value, empty.interval, empty.p_value, empty.ci) == (None, None, None, None)
    # the empty arm still counts in the Holm family, as p = 1
    assert small.adjusted_p_value == pytest.approx(min(1.0, 2 * small.p_value))
    _no_nan(report.as_dict())
    continuous = [{"name": "a", "weight": 1, "exposures": 1, "total": 3.0, "total_squares": 9.0},
                  {"name": "b", "weight": 1, "exposures": 0, "total": 0.0, "total_squares": 0.0}]
    rows = analyze(continuous, metric="continuous").arms
    assert rows[0].value == 3.0 and rows[0].interval is None and rows[1].verdict == "not enough data"


# Bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("call,message", [
    (lambda: wilson_interval(-1, 10), "must not be negative"),
    (lambda: wilson_interval(11, 10), "must not exceed"),
    (lambda: wilson_interval(0, 0), "at least 1"),
    (lambda: wilson_interval(1.5, 10), "whole number"),
    (lambda: wilson_interval(True, 10), "whole number"),
    (lambda: wilson_interval(1, 10, confidence=1.0), "between 0 and 1"),
    (lambda: two_proportion_test(5, 10, 11, 10), "variant successes"),
    (lambda: two_proportion_test(5, 0, 1, 10), "control trials"),
    (lambda: welch_t_test(1.0, -1.0, 10, 1.0, 1.0, 10), "variances"),
    (lambda: welch_t_test(1.0, 1.0, 1, 1.0, 1.0, 10), "at least 2"),
    (lambda: welch_t_test(float("nan"), 1.0, 5, 1.0, 1.0, 10), "finite"),
    (lambda: welch_t_test_arrays([1.0], [1.0, 2.0]), "at least 2"),
    (lambda: mean_and_variance(3, 6.0, 5.0), "inconsistent"),
    (lambda: holm_bonferroni([0.01, 1.2]), "between 0 and 1"),
    (lambda: holm_bonferroni([-0.1]), "between 0 and 1"),
    (lambda: holm_bonferroni([float("nan")]), "finite"),
    (lambda: holm_bonferroni([0.1], alpha=0), "alpha"),
    (lambda: sample_ratio_mismatch([10, 10], [0, 0]), "sum to a positive"),
    (lambda: sample_ratio_mismatch([10, 10], [1, -1]), "sum to a positive"),
    (lambda: sample_ratio_mismatch([10, 10], [1, 1, 1]), "2 observed counts but 3 weights"),
    (lambda: sample_ratio_mismatch([-1, 10], [1, 1]), "must not be negative"),
    (lambda: sample_ratio_mismatch([10], [1]), "at least 2 arms"),
    (lambda: sample_size_per_arm(0.0, 0.1), "baseline rate"),
    (lambda: sample_size_per_arm(0.5, 1.5), "outside"),
    (lambda: sample_size_per_arm(0.1, 0.0), "must not be 0"),
    (lambda: sample_size_per_arm(0.1, 0.1, arms=1), "at least 2 arms"),
    (lambda: msprt(0.1, 0.01, tau=0), "tau must be positive"),
    (lambda: msprt(0.1, -0.01, tau=0.1), "variance"),
    (lambda: msprt_proportions(3, 2, 1, 2), "must not exceed"),
    (lambda: msprt_sequence([]), "at least one look"),
    (lambda: analyze(THREE_ARMS[:1]), "at least one variant"),
    (lambda: analyze(THREE_ARMS, metric="revenue"), "metric must be one of"),
    (lambda: analyze(THREE_ARMS, method="bayesian"), "method must be one of"),
    (lambda: analyze([*THREE_ARMS, THREE_ARMS[1]]), "distinct"),
    (lambda: analyze([dict(THREE_ARMS[0], weight=0), dict(THREE_ARMS[1], weight=0)]), "sum to a positive"),
    (lambda: analyze([THREE_ARMS[0], dict(THREE_ARMS[1], conversions=6000)]), "exceed exposures"),
    (lambda: analyze([THREE_ARMS[0], dict(THREE_ARMS[1], exposures=-5)]), "must not be negative"),
    (lambda: analyze([THREE_ARMS[0], dict(THREE_ARMS[1], conversions=None)]), "has no conversions"),
    (lambda: analyze(THREE_ARMS, metric="continuous"), "needs total and total_squares"),
    (lambda: analyze(THREE_ARMS, method="sequential", tau=-1), "tau must be positive"),
    (lambda: analyze([THREE_ARMS[0], {"name": "b", "weight": 1, "visits": 5}]), "each arm needs"),
])
def test_bad_input_raises_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
