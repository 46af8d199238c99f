"""The data of an experiment's report: a few aggregate queries, then ``stats.analyze``.

Plain functions over querysets (no request, no admin code), so the report page, its CSV
export and the tests read the same numbers. Counts are per visitor: ``Exposure`` holds one row
per visitor and experiment, and a visitor "converts" when any goal event of theirs
(``Experiment.goal_q``) reached the server from their first exposure until the experiment's end
(``Experiment.measured_window``, ``Exposure.with_goal``). The continuous metric is the visitor's
dwell in that window, in seconds (on the goal's block for click and dwell goals, on every block
otherwise), compared with Welch's test.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, F, FloatField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from . import stats
from .models import Arm, Experiment, Exposure

METRICS = ("conversion", "continuous")
METRIC_LABELS = {"conversion": "Conversion rate", "continuous": "Dwell after exposure (seconds)"}


@dataclass(frozen=True)
class ArmCounts:
    """One arm's raw numbers, as the queries found them."""

    arm_id: int
    name: str
    weight: int
    is_control: bool
    exposures: int
    conversions: int
    dwell_total: float
    dwell_squares: float

    def summary(self, metric: str) -> stats.ArmSummary:
        if metric == "conversion":
            return stats.ArmSummary(self.name, self.weight, self.exposures, conversions=self.conversions)
        return stats.ArmSummary(self.name, self.weight, self.exposures, total=self.dwell_total,
                                total_squares=self.dwell_squares)


@dataclass(frozen=True)
class DailyPoint:
    """One arm on one day (visitors first exposed that day), and the running totals to that day."""

    day: datetime.date
    arm: str
    exposures: int
    conversions: int
    dwell_total: float
    cumulative_exposures: int
    cumulative_conversions: int
    cumulative_dwell_total: float

    def cumulative_value(self, metric: str) -> float | None:
        if not self.cumulative_exposures:
            return None
        numerator = self.cumulative_conversions if metric == "conversion" else self.cumulative_dwell_total
        return numerator / self.cumulative_exposures


@dataclass
class Report:
    experiment: Experiment
    metric: str
    arms: list[ArmCounts]
    analysis: stats.ExperimentReport | None
    daily: list[DailyPoint] = field(default_factory=list)
    error: str = ""

    @property
    def total_exposures(self) -> int:
        return sum(arm.exposures for arm in self.arms)


def ordered_arms(experiment: Experiment) -> list[Arm]:
    """The control first (``analyze`` compares every other arm with the first), then the editor's order."""
    arms = list(experiment.arms.all())
    return sorted(arms, key=lambda arm: (not arm.is_control, arm.sort_order or 0, arm.pk))


def _dwell_filter(experiment: Experiment) -> Q:
    q = Q(type="dwell")
    if experiment.goal_type in (Experiment.Goal.DWELL, Experiment.Goal.CLICK) and experiment.goal_name:
        q &= Q(block_id=experiment.goal_name)
    return q


def _annotated_exposures(experiment: Experiment):
    """Exposures with ``reached`` (goal after first exposure) and ``dwell`` (ms after it)."""
    from ..tracking.models import Event

    dwell = (Event.objects.filter(_dwell_filter(experiment), visitor_id=OuterRef("visitor_id"),
                                  **experiment.measured_window())
             .order_by().values("visitor_id").annotate(total=Sum("value")).values("total")[:1])
    return Exposure.objects.with_goal(experiment).annotate(
        dwell=Coalesce(Subquery(dwell, output_field=FloatField()), Value(0.0), output_field=FloatField()))


def _aggregates() -> dict[str, Any]:
    return {"n": Count("id"), "conversions": Count("id", filter=Q(reached=True)),
            "dwell_total": Sum("dwell"), "dwell_squares": Sum(F("dwell") * F("dwell"), output_field=FloatField())}


def arm_counts(experiment: Experiment) -> list[ArmCounts]:
    """Per arm: exposures, conversions after first exposure, and dwell sums (seconds): one query."""
    rows = {row["arm"]: row for row in _annotated_exposures(experiment).order_by()
            .values("arm").annotate(**_aggregates())}
    result = []
    for arm in ordered_arms(experiment):
        row = rows.get(arm.pk, {})
        result.append(ArmCounts(
            arm_id=arm.pk, name=arm.name, weight=arm.weight, is_control=arm.is_control,
            exposures=row.get("n") or 0, conversions=row.get("conversions") or 0,
            dwell_total=(row.get("dwell_total") or 0.0) / 1000.0,
            dwell_squares=(row.get("dwell_squares") or 0.0) / 1_000_000.0))
    return result


def daily_series(experiment: Experiment) -> list[DailyPoint]:
    """Per day of first exposure and arm (one query), with running totals for the chart: the
    cumulative metric per arm, as the report reads it on that day. Days are the site's
    (``TIME_ZONE``), not the viewing editor's, so every editor's CSV splits them alike."""
    names = {arm.pk: arm.name for arm in ordered_arms(experiment)}
    rows = (_annotated_exposures(experiment).order_by()
            .annotate(day=TruncDate("first_exposed_at", tzinfo=timezone.get_default_timezone()))
            .values("day", "arm")
            .annotate(**_aggregates()).order_by("day", "arm"))
    running: dict[int, list[float]] = {}
    points = []
    for row in rows:
        totals = running.setdefault(row["arm"], [0, 0, 0.0])
        dwell = (row["dwell_total"] or 0.0) / 1000.0
        totals[0] += row["n"]
        totals[1] += row["conversions"]
        totals[2] += dwell
        points.append(DailyPoint(day=row["day"], arm=names.get(row["arm"], str(row["arm"])), exposures=row["n"],
                                 conversions=row["conversions"], dwell_total=dwell,
                                 cumulative_exposures=int(totals[0]), cumulative_conversions=int(totals[1]),
                                 cumulative_dwell_total=totals[2]))
    return points


def build_report(experiment: Experiment, metric: str = "conversion", alpha: float = 0.05) -> Report:
    """The whole report. ``analysis`` is None (and ``error`` says why) when the arms cannot be
    analysed, e.g. an experiment saved without a control."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    arms = arm_counts(experiment)
    analysis, error = None, ""
    try:
        analysis = stats.analyze([arm.summary(metric) for arm in arms], metric=metric,
                                 method=experiment.analysis_method or "fixed", alpha=alpha)
    except ValueError as exc:
        error = str(exc)
    return Report(experiment=experiment, metric=metric, arms=arms, analysis=analysis,
                  daily=daily_series(experiment), error=error)
