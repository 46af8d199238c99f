"""The database sink: a batch goes straight into the event table (``event_store``).

The embedded default: no server besides the site's database (SQLite in the demo). One
INSERT a batch in the request; the profile update is left to the caller.
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from ..event_store import store_events
from ..models import LoadedBatch
from .base import Batch, EventSink, SinkUnavailable


def write_with_batch_id(batch: Batch) -> None:
    """The batch's events and its id (``LoadedBatch``) in one transaction: the stream sink's
    fallback while Redis is down. A batch whose id is there already is skipped."""
    try:
        with transaction.atomic():
            created = LoadedBatch.objects.get_or_create(
                batch_id=batch.batch_id, defaults={"loaded_at": timezone.now()})[1]
            if created:
                store_events(batch.visitor_id, batch.rows, device=batch.device,
                             received_at=batch.received_at)
    except (OperationalError, InterfaceError) as exc:
        raise SinkUnavailable(str(exc)) from exc


class DatabaseSink(EventSink):
    name = "database"
    fault_kind = "database"

    def write(self, batch: Batch) -> bool:
        try:
            store_events(batch.visitor_id, batch.rows, device=batch.device,
                         received_at=batch.received_at)
        except (OperationalError, InterfaceError) as exc:
            raise SinkUnavailable(str(exc)) from exc
        return False
