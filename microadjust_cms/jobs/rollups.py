"""The rollup refresh as a job: one at a time (two would rebuild the same days at once)."""

from __future__ import annotations

import uuid

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
