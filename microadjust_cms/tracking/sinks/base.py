"""The event sink contract: where the collect endpoint puts a validated batch.

A sink takes a ``Batch`` whole or not at all. ``write`` returning means the batch is durable
as far as the sink promises (the database sink: committed; the stream sink: appended to a Redis
Stream, as durable as Redis' AOF setting makes it) and will reach the event table: at once
(database) or when a loader drains the stream (``tracking.loader``). Every sink passes
``tests/test_sink_contract.py``.

Failures are exceptions the endpoint turns into answers: ``SinkFull`` (a bounded backlog is
full: 503 with Retry-After, the tracker keeps the batch) and ``SinkUnavailable`` (the backend
cannot be reached: 503 too). Anything else is a bug and stays a 500.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ...behaviour import BehaviourUpdate


class SinkUnavailable(Exception):
    """The sink's backend could not be reached; nothing of the batch was kept."""


class SinkFull(Exception):
    """The sink's backlog is at its bound (``EVENT_STREAM_MAX_BATCHES``): retry later."""

    def __init__(self, message: str, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(Exception):
    """The sender passed ``COLLECT_RATE`` (a sink that enforces it: ``enforces_rate_limit``)."""


def new_batch_id() -> str:
    """Server-made: the client never chooses it, so a forged id cannot shadow another batch."""
    return uuid.uuid4().hex


@dataclass
class Batch:
    """One request's validated events (``schema.validate_batch`` rows) for one visitor.

    ``update`` is the batch's behaviour summary (``behaviour.summarize``); a sink that can apply
    it with the append in one round trip does so and says so (``write`` returns True).
    """

    visitor_id: str
    rows: list[dict[str, Any]]
    device: str = ""
    received_at: datetime | None = None
    update: BehaviourUpdate | None = None
    batch_id: str = field(default_factory=new_batch_id)
    #: Who the rate limit counts this batch for (the visitor id, or "addr:<address>" for a
    #: newcomer); only a sink with ``enforces_rate_limit`` reads it.
    rate_key: str | None = None


class EventSink:
    """Base class. Subclasses set ``name`` and implement ``write``."""

    #: Shown in the admin and the metrics ("database", "redis-stream").
    name = "sink"
    #: The ``faults`` kind an outage of this sink is counted under.
    fault_kind = "event_sink"
    #: True when ``write`` applies ``COLLECT_RATE`` itself (in its own round trip) and raises
    #: ``RateLimited``; otherwise collect asks django-ratelimit first.
    enforces_rate_limit = False

    def write(self, batch: Batch) -> bool:
        """Keep ``batch`` (all its rows or none). Returns True when the sink also applied
        ``batch.update`` to the visitor's profile (then the caller must not apply it again).
        Raises ``SinkFull``, ``SinkUnavailable`` or (``enforces_rate_limit``) ``RateLimited``;
        nothing partial is kept either way."""
        raise NotImplementedError

    def backlog(self) -> dict[str, Any]:
        """What waits to reach the event table (the admin and the metrics show it): at least
        ``{"sink": name, "pending_batches": int}``; a sink that writes directly has none."""
        return {"sink": self.name, "pending_batches": 0}
