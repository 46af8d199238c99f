"""Retention: events older than ``EVENT_RETENTION_DAYS`` are deleted (privacy by default)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from ..conf import get_setting


def purge_events(*, days: int | None = None, now: datetime | None = None) -> int:
    """Delete events that occurred before the retention window; return how many went."""
    from ..tracking.models import Event
    from ..tracking.partitions import drop_partitions_before, ensure_partitions

    keep_days = get_setting("EVENT_RETENTION_DAYS") if days is None else days
    cutoff = (now or timezone.now()) - timedelta(days=keep_days)
    # PostgreSQL: whole months before the cutoff go at once, then the rows left before it.
    _months, deleted = drop_partitions_before(cutoff)
    deleted += Event.objects.filter(occurred_at__lt=cutoff).delete()[0]
    ensure_partitions(now)  # the coming months, created ahead
    # Exposures hold visitor ids too: the same retention applies (first exposure before the
    # cutoff). Only events are counted in the result, as the command reports events.
    from ..experiments.models import Exposure

    Exposure.objects.filter(first_exposed_at__lt=cutoff).delete()
    from ..tracking.loader import purge_loaded_batches

    purge_loaded_batches(now)  # the loader's record of written batch ids (a week by default)
    return deleted
