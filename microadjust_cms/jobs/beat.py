"""The nightly schedule of the learning jobs, as ``CELERY_BEAT_SCHEDULE`` entries.

Schedules are crontab strings in the ``MICROADJUST_<KIND>_SCHEDULE`` settings. A settings module
cannot call ``get_setting`` (Django is not configured yet), so it passes its own namespace::

    CELERY_BEAT_SCHEDULE = {**beat_schedule(globals()), ...your own entries}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .. import defaults

#: setting name -> (beat entry name, task name)
SCHEDULED_TASKS = {
    "RECLUSTER_SCHEDULE": ("microadjust-recluster", "microadjust_cms.recluster"),
    "TRAIN_SCHEDULE": ("microadjust-train-engagement-model", "microadjust_cms.train_engagement_model"),
    "PURGE_SCHEDULE": ("microadjust-purge-events", "microadjust_cms.purge_events"),
    "ROLLUP_SCHEDULE": ("microadjust-refresh-rollups", "microadjust_cms.refresh_rollups"),
    "ANOMALY_SCHEDULE": ("microadjust-find-anomalies", "microadjust_cms.find_anomalies"),
}


def parse_crontab(text: str, setting: str = "schedule") -> Any:
    """A Celery ``crontab`` from "minute hour day-of-month month day-of-week"."""
    from celery.schedules import crontab

    fields = str(text).split()
    if len(fields) != 5:
        raise ImproperlyConfigured(
            f"{setting} must be a crontab of five fields (minute hour day-of-month month "
            f"day-of-week), e.g. '30 2 * * *'; got {text!r}.")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        return crontab(minute=minute, hour=hour, day_of_month=day_of_month,
                       month_of_year=month_of_year, day_of_week=day_of_week)
    except Exception as exc:  # celery raises ValueError or its own ParseException
        raise ImproperlyConfigured(f"{setting} is not a valid crontab ({text!r}): {exc}") from None


def beat_schedule(namespace: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Beat entries for the jobs whose schedule is set.

    ``namespace``: a settings module's ``globals()``; None reads Django's settings through
    ``get_setting``. A schedule of None or "" leaves that job out.
    """
    entries: dict[str, dict[str, Any]] = {}
    for name, (entry, task) in SCHEDULED_TASKS.items():
        if namespace is None:
            from ..conf import get_setting

            value = get_setting(name)
        else:
            value = namespace.get(f"MICROADJUST_{name}", getattr(defaults, name))
        if value:
            entries[entry] = {"task": task, "schedule": parse_crontab(value, f"MICROADJUST_{name}")}
    return entries
