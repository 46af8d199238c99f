"""The database sink: a batch goes straight into the event table (``event_store``).

The embedded default: no server besides the site's database (SQLite in the demo). One
INSERT a batch in the request; the profile update is left to the caller.
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError

from ..event_store import store_events
from .base import Batch, EventSink, SinkUnavailable


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
