"""The database sink: a batch goes straight into the event table (``event_store``).

The embedded default: no server besides the site's database (SQLite in the demo). One
INSERT a batch in the request; the profile update is left to the caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from ..event_store import store_events
from ..models import LoadedBatch
from .base import Batch, EventSink, SinkUnavailable


def _store(batch: Batch) -> None:
    store_events(batch.visitor_id, batch.rows, device=batch.device,
                 received_at=batch.received_at)


def write_with_batch_id(batch: Batch) -> None:
    """The batch's events and its id (``LoadedBatch``) in one transaction: the stream sink's
    fallback while Redis is down. A batch whose id is there already is skipped."""
    with _unavailable_as_sink_error(), transaction.atomic():
        created = LoadedBatch.objects.get_or_create(
            batch_id=batch.batch_id, defaults={"loaded_at": timezone.now()})[1]
        if created:
            _store(batch)


@contextmanager
def _unavailable_as_sink_error() -> Iterator[None]:
    """A database that cannot be reached is the sink's ``SinkUnavailable`` (a 503 at collect);
    any other database error stays what it is (a bug, a 500)."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise SinkUnavailable(str(exc)) from exc


class DatabaseSink(EventSink):
    name = "database"
    fault_kind = "database"

    def write(self, batch: Batch) -> bool:
        with _unavailable_as_sink_error():
            _store(batch)
        return False
