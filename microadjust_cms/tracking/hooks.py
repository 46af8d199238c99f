"""Django signals the tracking layer sends, so features above it can follow the event table
without the loader or the sinks knowing them (``analytics`` keeps its rollups current this way).
"""

from __future__ import annotations

from django.dispatch import Signal

#: Sent inside the transaction that stores events written outside a request (the loader's
#: rounds, an erasure), with ``earliest``: the earliest ``occurred_at`` among them (aware
#: datetime). Events the database sink stores in the request are not announced: they occurred
#: within a day of being received, which a reader covers by time alone.
events_changed = Signal()
