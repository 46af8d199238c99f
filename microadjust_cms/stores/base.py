"""The profile store contract. Every store passes ``tests/test_store_contract.py``."""

from __future__ import annotations

from dataclasses import dataclass

from ..conf import get_setting


class StoreUnavailable(Exception):
    """The store could not be reached; callers fall back to defaults and log."""


@dataclass(frozen=True)
class Profile:
    """What the store knows about one visitor, as of this request.

    ``visits``: visits so far, the current one included (a visit ends after
    ``VISIT_IDLE_SECONDS`` idle). ``visit_pageviews``: page views in the current visit.
    ``page_views``: views of the current page. ``last_seen``: when the visitor was seen before
    this request (epoch seconds, 0 when never).
    """

    visits: int = 0
    visit_pageviews: int = 0
    total_pageviews: int = 0
    page_views: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0

    @classmethod
    def empty(cls) -> Profile:
        return cls()


class ProfileStore:
    """Base class: one round trip per call, keys of one visitor hash-tagged together."""

    def key(self, visitor_id: str, suffix: str) -> str:
        """``<prefix>:{<visitor>}:<suffix>``: the braces keep one visitor's keys in one slot."""
        return f"{get_setting('KEY_PREFIX')}:{{{visitor_id}}}:{suffix}"

    def load(self, visitor_id: str, page_key: str | None, *, record_view: bool,
             now: float) -> Profile:
        """Return the visitor's profile; when ``record_view``, first count a page view of
        ``page_key`` at ``now`` (starting a new visit after the idle gap). One round trip.
        Raise ``StoreUnavailable`` when the backend cannot be reached."""
        raise NotImplementedError

    def clear(self, visitor_id: str) -> None:
        """Forget everything about the visitor (privacy requests, tests)."""
        raise NotImplementedError

    @staticmethod
    def advance(state: dict[str, float], page_count: int, *, record_view: bool, now: float,
                idle: float) -> tuple[dict[str, float], int]:
        """The visit arithmetic, shared by stores that compute in Python."""
        if not record_view:
            return state, page_count
        state = dict(state)
        previous = state.get("last_seen", 0.0)
        if not state.get("visits") or now - previous > idle:
            state["visits"] = state.get("visits", 0) + 1
            state["visit_pageviews"] = 0
        state["visit_pageviews"] = state.get("visit_pageviews", 0) + 1
        state["total_pageviews"] = state.get("total_pageviews", 0) + 1
        state.setdefault("first_seen", now)
        state["prev_seen"] = previous
        state["last_seen"] = now
        return state, page_count + 1

    @staticmethod
    def to_profile(state: dict[str, float], page_count: int, *, record_view: bool) -> Profile:
        return Profile(
            visits=int(state.get("visits", 0)),
            visit_pageviews=int(state.get("visit_pageviews", 0)),
            total_pageviews=int(state.get("total_pageviews", 0)),
            page_views=int(page_count),
            first_seen=float(state.get("first_seen", 0.0)),
            last_seen=float(state.get("prev_seen" if record_view else "last_seen", 0.0)),
        )
