"""Forgetting a visitor: their events, experiment exposures and profile, on request.

The events and exposures go in one transaction, which also tells the rollups
(``tracking.hooks.events_changed``) to rebuild from the visitor's earliest event, so figures
stay exact; the refresh then runs at once. With the Redis Streams sink, batches still waiting
in the stream are loaded first (``drain``), or the loader would store them after the erasure.
A logged-in visitor's id is ``u<user pk>``; what they did before logging in was under their
cookie's id, which only their browser knows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Min

from ..experiments.models import Exposure
from ..tracking.hooks import events_changed
from ..tracking.models import Event
from ..visitor.stores import get_profile_store
from .rollups import refresh_rollups

VISITOR_ID_RE = re.compile(r"^(?:[0-9a-f]{32}|u\d{1,18})\Z")


class UnknownVisitor(ValueError):
    """Not a visitor id, nor a user."""


@dataclass(frozen=True)
class Erasure:
    visitor_id: str
    events: int
    exposures: int
    loaded_first: int

    def describe(self) -> str:
        return (f"Forgot visitor {self.visitor_id}: {self.events} events and {self.exposures} experiment "
                f"exposures deleted, profile cleared"
                + (f" ({self.loaded_first} events waiting in the stream loaded first)." if self.loaded_first
                   else "."))


def visitor_id_for(value: str) -> str:
    """A visitor id from a visitor id, ``u<pk>``, or a username (``UnknownVisitor`` otherwise)."""
    value = value.strip()
    if VISITOR_ID_RE.match(value):
        return value
    user = get_user_model()._default_manager.filter(**{get_user_model().USERNAME_FIELD: value}).first()
    if user is None:
        raise UnknownVisitor(f"{value!r} is neither a visitor id (32 hexadecimal characters, or u<user "
                             "id>) nor a username")
    return f"u{user.pk}"


def forget_visitor(visitor_id: str, *, drain: bool = True) -> Erasure:
    """Delete the visitor's events and exposures, clear their profile, refresh the rollups.
    ``StoreUnavailable`` when the profile store is down (the events are gone by then: run it
    again once the store is back, which finds nothing more to delete and clears the profile)."""
    if not VISITOR_ID_RE.match(visitor_id):
        raise UnknownVisitor(f"{visitor_id!r} is not a visitor id")
    loaded = _drain() if drain else 0
    with transaction.atomic():
        events = Event.objects.filter(visitor_id=visitor_id)
        earliest = events.aggregate(first=Min("occurred_at"))["first"]
        deleted_events = events.delete()[0]
        deleted_exposures = Exposure.objects.filter(visitor_id=visitor_id).delete()[0]
        if earliest is not None:
            events_changed.send(Erasure, earliest=earliest)
    get_profile_store().clear(visitor_id)
    refresh_rollups()
    return Erasure(visitor_id, deleted_events, deleted_exposures, loaded)


def _drain() -> int:
    from ..tracking.loader import drain_in_threads
    from ..tracking.sinks import get_event_sink
    from ..tracking.sinks.redis_stream import RedisStreamSink

    if not isinstance(get_event_sink(), RedisStreamSink):
        return 0
    return drain_in_threads(1, consumer="erasure", max_seconds=120).events
