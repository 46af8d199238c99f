"""Spikes and drops: the modified z-score by weekday, the thresholds, the dashboard panel and
the hook that tells the site."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

import pytest
from django.utils import timezone
from wagtail import hooks

from microadjust_cms.analytics import anomalies
from microadjust_cms.analytics.models import ALL_DEVICES, Anomaly, BlockRollup, Period
from microadjust_cms.jobs.rollups import ANOMALY_HOOK, find_anomalies

pytestmark = pytest.mark.django_db
ZONE = timezone.get_default_timezone()
DAY = date(2026, 6, 30)  # a Tuesday


def rollup(day: date, impressions: int, clicks: int, abandons: int = 0, block="hero", variant="v1",
           segment=""):
    BlockRollup.objects.create(period=Period.DAY, start=datetime.combine(day, time(), tzinfo=ZONE),
                               page_id=3, block_id=block, variant=variant, device=ALL_DEVICES, segment=segment,
                               impressions=impressions, visitors=impressions, clicks=clicks, abandons=abandons)


def history(days: int = 28, *, weekend_ctr: float = 0.10, weekday_ctr: float = 0.10, seed: int = 1):
    rng = random.Random(seed)
    for back in range(1, days + 1):
        day = DAY - timedelta(days=back)
        ctr = weekend_ctr if day.weekday() >= 5 else weekday_ctr
        rollup(day, 1000, int(1000 * ctr * rng.uniform(0.9, 1.1)), abandons=int(1000 * 0.2 * rng.uniform(0.9, 1.1)))


def test_a_ctr_drop_is_found_and_an_ordinary_day_is_not():
    history()
    rollup(DAY, 1000, 104, abandons=205)
    rollup(DAY, 200, 2, abandons=41, segment="loyal")  # a segment's own low CTR: not everyone's
    assert anomalies.find(DAY) == []
    Anomaly.objects.all().delete()
    BlockRollup.objects.filter(start__date=DAY).delete()
    rollup(DAY, 1000, 40, abandons=200)  # CTR from about 10 % to 4 %
    (finding,) = anomalies.find(DAY)
    assert (finding.block_id, finding.metric) == ("hero", "ctr")
    assert finding.score <= -3.5 and finding.value == pytest.approx(0.04)


def test_the_weekly_rhythm_is_not_an_anomaly_but_a_break_in_it_is():
    """Weekends run at 20 % CTR, weekdays at 10 %: a Saturday at 20 % is usual; a Tuesday at
    20 % is not. A plain modified z-score over all days would flag the ordinary Saturday too."""
    history(weekend_ctr=0.20, weekday_ctr=0.10)
    saturday = DAY + timedelta(days=4)
    rollup(saturday, 1000, 201, abandons=200)
    assert anomalies.find(saturday) == []
    rates = [r.clicks / r.impressions for r in BlockRollup.objects.exclude(start__date=saturday)]
    assert anomalies.modified_z(0.201, rates) >= 3.5  # what the weekday adjustment avoids
    rollup(DAY, 1000, 200, abandons=200)
    (finding,) = anomalies.find(DAY)
    assert finding.metric == "ctr" and finding.score >= 3.5


def test_too_few_impressions_or_days_are_not_judged(settings):
    history(days=10)
    rollup(DAY, 1000, 10, abandons=200)
    assert anomalies.find(DAY) == []  # 10 days of history < 14
    BlockRollup.objects.all().delete()
    history()
    rollup(DAY, 50, 0, abandons=40)  # 50 impressions < 100
    assert anomalies.find(DAY) == []


def test_a_flat_history_flags_any_change():
    for back in range(1, 21):
        rollup(DAY - timedelta(days=back), 1000, 100)
    rollup(DAY, 1000, 130)
    (finding,) = anomalies.find(DAY)
    assert finding.score == float("inf")
    (stored,) = anomalies.record(DAY, [finding])
    assert stored.score == 99.0 and stored.direction == "spike"


def test_the_job_stores_tells_the_hook_and_the_dashboard_shows_it(admin_client):
    history()
    rollup(DAY, 1000, 30, abandons=200)
    told = []

    def notify(found):
        told.extend(found)

    with hooks.register_temporarily(ANOMALY_HOOK, notify):
        found = find_anomalies(DAY)
    assert [a.metric for a in found] == ["ctr"] and told == found
    assert Anomaly.objects.get().direction == "drop"
    # Checking the day again replaces its rows.
    find_anomalies(DAY)
    assert Anomaly.objects.count() == 1
    Anomaly.objects.update(day=timezone.localdate() - timedelta(days=1))
    html = admin_client.get("/admin/").content.decode()
    assert "spikes and drops" in html and 'data-ma-anomaly="drop"' in html
    assert "Click-through rate drop" in html


def test_the_dashboard_says_when_nothing_moved(admin_client):
    html = admin_client.get("/admin/").content.decode()
    assert "left its usual range in the last 7 days" in html
