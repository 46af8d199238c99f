"""Rollups of the event table: one row per period (a day, or an hour for the last 48 hours) and
per page, block, variant and device; one per period, page and device for page figures.

Rows are rebuilt from the events of their period (``rollups.refresh``), never incremented, so a
period rebuilt twice, late events and an erased visitor all leave them exact.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

#: Upper edges of the dwell histogram's buckets, in milliseconds (the last bucket is open).
#: Medians and percentiles over any date range are read from summed buckets.
DWELL_EDGES_MS = (1_000, 2_000, 3_000, 5_000, 8_000, 10_000, 15_000, 20_000, 30_000, 45_000,
                  60_000, 90_000, 120_000, 180_000, 300_000, 600_000, 1_200_000, 1_800_000)
DWELL_BUCKETS = len(DWELL_EDGES_MS) + 1
SCROLL_MILESTONES = (25, 50, 75, 90, 100)
#: The ``device`` of the rows for all devices together (never a device the tracker reports).
ALL_DEVICES = "all"
#: The ``segment`` of the rows for all visitors (a segment's rows count only the events
#: stamped with it: ``Event.segments``).
ALL_VISITORS = ""


class Period(models.TextChoices):
    DAY = "day", _("Day")
    HOUR = "hour", _("Hour")


class BlockRollup(models.Model):
    """A block variant's figures for one period, page, device and segment."""

    period = models.CharField(max_length=4, choices=Period.choices)
    start = models.DateTimeField(help_text=_("Start of the period, in the site's time zone."))
    page_id = models.PositiveIntegerField(null=True, blank=True)
    block_id = models.CharField(max_length=64)
    variant = models.CharField(max_length=50, blank=True)
    device = models.CharField(max_length=8, blank=True)
    segment = models.CharField(max_length=100, blank=True, default=ALL_VISITORS)
    impressions = models.PositiveIntegerField(default=0)
    #: Distinct visitors with an impression in the period.
    visitors = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)
    abandons = models.PositiveIntegerField(default=0)
    #: Visitors with an impression who converted later in the same period (any goal).
    converters = models.PositiveIntegerField(default=0)
    dwells = models.PositiveIntegerField(default=0)
    dwell_ms = models.BigIntegerField(default=0)
    for _i in range(DWELL_BUCKETS):
        locals()[f"dwell_b{_i}"] = models.PositiveIntegerField(default=0)
    del _i

    class Meta:
        verbose_name = _("block rollup")
        constraints = [models.UniqueConstraint(
            fields=["period", "start", "page_id", "block_id", "variant", "device", "segment"],
            name="ma_block_rollup_key")]
        indexes = [models.Index(fields=["period", "start"], name="ma_block_rollup_time"),
                   models.Index(fields=["period", "device", "segment", "start"], name="ma_block_rollup_report"),
                   models.Index(fields=["block_id", "period", "start"], name="ma_block_rollup_block")]

    def __str__(self) -> str:
        return f"{self.block_id}/{self.variant or 'default'} {self.period} {self.start:%Y-%m-%d %H:%M}"


class PageRollup(models.Model):
    """A page's views and how far down they scrolled, for one period, device and segment."""

    period = models.CharField(max_length=4, choices=Period.choices)
    start = models.DateTimeField()
    page_id = models.PositiveIntegerField()
    device = models.CharField(max_length=8, blank=True)
    segment = models.CharField(max_length=100, blank=True, default=ALL_VISITORS)
    pageviews = models.PositiveIntegerField(default=0)
    visitors = models.PositiveIntegerField(default=0)
    scroll_25 = models.PositiveIntegerField(default=0)
    scroll_50 = models.PositiveIntegerField(default=0)
    scroll_75 = models.PositiveIntegerField(default=0)
    scroll_90 = models.PositiveIntegerField(default=0)
    scroll_100 = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("page rollup")
        constraints = [models.UniqueConstraint(fields=["period", "start", "page_id", "device", "segment"],
                                               name="ma_page_rollup_key")]
        indexes = [models.Index(fields=["page_id", "period", "start"], name="ma_page_rollup_page")]

    def __str__(self) -> str:
        return f"page {self.page_id} {self.period} {self.start:%Y-%m-%d %H:%M}"


class RollupState(models.Model):
    """One row: when rollups were last refreshed, and the earliest event time changed since by
    a writer that announced it (``tracking.hooks.events_changed``)."""

    last_run_at = models.DateTimeField(null=True, blank=True)
    dirty_from = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("rollup state")

    def __str__(self) -> str:
        return f"rollups refreshed {self.last_run_at or 'never'}"


class Anomaly(models.Model):
    """A day on which a block variant's CTR or abandon rate left its own recent range
    (``analytics.anomalies``)."""

    class Metric(models.TextChoices):
        CTR = "ctr", _("Click-through rate")
        ABANDON_RATE = "abandon_rate", _("Abandon rate")

    day = models.DateField()
    page_id = models.PositiveIntegerField(null=True, blank=True)
    block_id = models.CharField(max_length=64)
    variant = models.CharField(max_length=50, blank=True)
    metric = models.CharField(max_length=16, choices=Metric.choices)
    value = models.FloatField()
    #: The median of the rate over the days compared with, and the modified z-score.
    median = models.FloatField()
    score = models.FloatField()
    impressions = models.PositiveIntegerField()
    found_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("anomaly")
        verbose_name_plural = _("anomalies")
        constraints = [models.UniqueConstraint(fields=["day", "page_id", "block_id", "variant", "metric"],
                                               name="ma_anomaly_once")]
        ordering = ["-day", "-score"]

    def __str__(self) -> str:
        return f"{self.block_id}/{self.variant or 'default'} {self.metric} {self.direction} on {self.day}"

    @property
    def direction(self) -> str:
        return "spike" if self.value > self.median else "drop"
