"""Experiment statistics: the public entry point (plain functions, no database).

Import from here; the code lives in three modules kept small:
``stats_core`` (Wilson interval, two-proportion z-test with Newcombe interval, Welch t-test,
Holm-Bonferroni, sample ratio mismatch, sample size), ``stats_sequential`` (the always-valid
mSPRT of Johari et al.) and ``stats_report`` (``analyze``, the statistics of one report).
Each module's docstring names its methods and cites them.
"""

from .stats_core import (
    SRM_P_THRESHOLD,
    ComparisonResult,
    HolmResult,
    SampleSize,
    SRMResult,
    holm_bonferroni,
    mean_and_variance,
    sample_ratio_mismatch,
    sample_size_per_arm,
    two_proportion_test,
    welch_t_test,
    welch_t_test_arrays,
    wilson_interval,
)
from .stats_report import (
    MIN_EXPOSURES_PER_ARM,
    MIN_OUTCOMES,
    VERDICT_BETTER,
    VERDICT_CONTROL,
    VERDICT_INCONCLUSIVE,
    VERDICT_NOT_ENOUGH_DATA,
    VERDICT_WORSE,
    ArmReport,
    ArmSummary,
    ExperimentReport,
    analyze,
)
from .stats_sequential import (
    DEFAULT_TAU_PROPORTION,
    DEFAULT_TAU_SD,
    SequentialResult,
    msprt,
    msprt_means,
    msprt_means_from_sums,
    msprt_proportions,
    msprt_sequence,
)

__all__ = [
    "DEFAULT_TAU_PROPORTION", "DEFAULT_TAU_SD", "MIN_EXPOSURES_PER_ARM", "MIN_OUTCOMES", "SRM_P_THRESHOLD",
    "VERDICT_BETTER", "VERDICT_CONTROL", "VERDICT_INCONCLUSIVE", "VERDICT_NOT_ENOUGH_DATA", "VERDICT_WORSE",
    "ArmReport", "ArmSummary", "ComparisonResult", "ExperimentReport", "HolmResult", "SRMResult", "SampleSize",
    "SequentialResult", "analyze", "holm_bonferroni", "mean_and_variance", "msprt", "msprt_means",
    "msprt_means_from_sums", "msprt_proportions", "msprt_sequence", "sample_ratio_mismatch", "sample_size_per_arm",
    "two_proportion_test", "welch_t_test", "welch_t_test_arrays", "wilson_interval",
]
