"""Spikes and drops: a block variant whose CTR or abandon rate on a day left its own recent range.

The rule (Iglewicz and Hoaglin's modified z-score, robust to the outliers it looks for): for the
day checked and each (page, block, variant), over all devices,

    z = 0.6745 · (rate − median) / MAD

where the median and the median absolute deviation (MAD) are those of the variant's daily rates
over the ``ANOMALY_HISTORY_DAYS`` days before it. To be robust to the week's rhythm (weekends
differ), each earlier day's rate is first taken relative to its weekday: a day is compared with
the median of the same weekday in the history, and the z-score is of that difference against
the history's own differences. A day is flagged when |z| ≥ ``ANOMALY_THRESHOLD`` (3.5, the
authors' recommendation) and it had at least ``ANOMALY_MIN_IMPRESSIONS`` impressions, with at
least ``ANOMALY_MIN_HISTORY_DAYS`` days of history. When the MAD is 0 (a flat history), the
mean absolute deviation stands in (z = (rate − median) / (1.2533 · meanAD)); a history with no
variation at all flags any change.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from django.utils import timezone

from ..conf import get_setting
from .figures import day_range
from .models import ALL_DEVICES, ALL_VISITORS, Anomaly, BlockRollup, Period

#: Anomaly.Metric → (numerator field, denominator field) of the daily rollup rows.
RATES = {Anomaly.Metric.CTR: ("clicks", "impressions"),
         Anomaly.Metric.ABANDON_RATE: ("abandons", "impressions")}


@dataclass(frozen=True)
class Finding:
    page_id: int | None
    block_id: str
    variant: str
    metric: str
    value: float
    median: float
    score: float
    impressions: int


def modified_z(value: float, history: list[float]) -> float:
    """Iglewicz and Hoaglin's modified z-score of ``value`` against ``history``."""
    median = statistics.median(history)
    deviations = [abs(x - median) for x in history]
    mad = statistics.median(deviations)
    if mad > 0:
        return 0.6745 * (value - median) / mad
    mean_ad = statistics.fmean(deviations)
    if mean_ad > 0:
        return (value - median) / (1.253314 * mean_ad)
    return 0.0 if value == median else float("inf") if value > median else float("-inf")


def seasonal_z(value: float, day: date, history: dict[date, float]) -> float:
    """``modified_z`` after taking each rate relative to the median of its weekday."""
    by_weekday: dict[int, list[float]] = defaultdict(list)
    for past, rate in history.items():
        by_weekday[past.weekday()].append(rate)
    weekday_median = {w: statistics.median(rates) for w, rates in by_weekday.items()}
    baseline = weekday_median.get(day.weekday(), statistics.median(history.values()))
    residuals = [rate - weekday_median[past.weekday()] for past, rate in history.items()]
    return modified_z(value - baseline, residuals)


def find(day: date) -> list[Finding]:
    """The block variants whose rates on ``day`` left their range (module doc)."""
    history_days = get_setting("ANOMALY_HISTORY_DAYS")
    first, after = day_range(day - timedelta(days=history_days), day)
    rows = (BlockRollup.objects.filter(period=Period.DAY, device=ALL_DEVICES, segment=ALL_VISITORS,
                                       start__gte=first, start__lt=after)
            .values_list("start", "page_id", "block_id", "variant", "impressions", "clicks", "abandons"))
    series: dict[tuple, dict[date, tuple[int, int, int]]] = defaultdict(dict)
    zone = timezone.get_default_timezone()
    for start, page_id, block_id, variant, impressions, clicks, abandons in rows:
        local_day = timezone.localtime(start, zone).date()  # the database answers in UTC
        series[(page_id, block_id, variant)][local_day] = (impressions, clicks, abandons)
    threshold = get_setting("ANOMALY_THRESHOLD")
    findings = []
    for (page_id, block_id, variant), days in series.items():
        today = days.get(day)
        if today is None or today[0] < get_setting("ANOMALY_MIN_IMPRESSIONS"):
            continue
        past = {d: counts for d, counts in days.items() if d < day and counts[0] > 0}
        if len(past) < get_setting("ANOMALY_MIN_HISTORY_DAYS"):
            continue
        for metric, (numerator, _denominator) in RATES.items():
            index = 1 if numerator == "clicks" else 2
            rate = today[index] / today[0]
            history = {d: counts[index] / counts[0] for d, counts in past.items()}
            score = seasonal_z(rate, day, history)
            if abs(score) >= threshold:
                findings.append(Finding(page_id, block_id, variant, metric, rate,
                                        statistics.median(history.values()), score, today[0]))
    return findings


def record(day: date, findings: list[Finding]) -> list[Anomaly]:
    """Store the day's findings (a day checked again replaces its rows); the new rows."""
    Anomaly.objects.filter(day=day).delete()
    # A flat history makes any change infinitely unusual: stored as ±99.
    return Anomaly.objects.bulk_create(
        Anomaly(day=day, **{**f.__dict__, "score": max(-99.0, min(99.0, f.score))}) for f in findings)
