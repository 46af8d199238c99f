"""The rollup refresh as a job (one at a time: two would rebuild the same days at once), and the
daily search for spikes and drops, which tells the site through a Wagtail hook."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone
from wagtail import hooks

from ..analytics import anomalies
from ..analytics.models import Anomaly
from ..analytics.rollups import RefreshStats, refresh
from .locks import job_lock


def refresh_rollups() -> RefreshStats | None:
    """Refresh the analytics rollups; None when another refresh holds the lock."""
    lock = job_lock("rollups", uuid.uuid4().hex)
    if not lock.acquire():
        return None
    try:
        return refresh()
    finally:
        lock.release()


def describe(stats: RefreshStats | None) -> str:
    if stats is None:
        return "Another refresh is running; nothing done."
    if stats.start is None:
        return "No events yet; nothing to roll up."
    return (f"Rebuilt {stats.days} day(s) from {stats.start:%Y-%m-%d} ({stats.hours} with hourly "
            f"rows): {stats.block_rows} block and {stats.page_rows} page rollup rows.")


#: Wagtail hook: ``@hooks.register(ANOMALY_HOOK) def notify(anomalies): ...`` receives the list
#: of ``Anomaly`` rows a check found (not called when it found none), e.g. to e-mail editors.
ANOMALY_HOOK = "microadjust_anomalies_found"


def find_anomalies(day: date | None = None) -> list[Anomaly]:
    """Refresh the rollups, check ``day`` (yesterday by default), store and announce what it found."""
    day = day or timezone.localdate() - timedelta(days=1)
    refresh_rollups()
    with transaction.atomic():
        found = anomalies.record(day, anomalies.find(day))
    if found:
        for notify in hooks.get_hooks(ANOMALY_HOOK):
            notify(found)
    return found
