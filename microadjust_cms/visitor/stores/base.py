"""The profile store contract. Every store passes ``tests/test_store_contract.py``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice

from ...behaviour import AFFINITY_PREFIX, BehaviourUpdate, decay
from ...conf import get_setting


def half_life_seconds() -> float:
    """``ENGAGEMENT_HALF_LIFE_DAYS`` in seconds: the decay every store applies."""
    return get_setting("ENGAGEMENT_HALF_LIFE_DAYS") * 86400.0


class StoreUnavailable(Exception):
    """The store could not be reached; callers fall back to defaults and log."""


@dataclass(frozen=True)
class Profile:
    """What the store knows about one visitor, as of this request.

    ``visits``: visits so far, the current one included (a visit ends after
    ``VISIT_IDLE_SECONDS`` idle). ``visit_pageviews``: page views in the current visit.
    ``page_views``: views of the current page. ``last_seen``: when the visitor was seen before
    this request (epoch seconds, 0 when never). ``last_visit_end``: when the visit before the
    current one ended (0 on a first visit).

    Behaviour (from tracked events, see ``behaviour``): ``engagement`` and ``affinity`` are
    decayed to the time of loading; ``page_scroll`` (deepest milestone) and ``page_dwell``
    (block dwell seconds) are for the current page; ``abandoned`` and ``clicked`` hold block ids.
    """

    visits: int = 0
    visit_pageviews: int = 0
    total_pageviews: int = 0
    page_views: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    last_visit_end: float = 0.0
    engagement: float = 0.0
    affinity: Mapping[str, float] = field(default_factory=dict)
    conversions: int = 0
    page_scroll: int = 0
    page_dwell: float = 0.0
    abandoned: frozenset[str] = frozenset()
    clicked: frozenset[str] = frozenset()
    #: The cluster segment (slug) the last clustering run put the visitor in, and that run's id.
    cluster: str = ""
    cluster_run: int = 0
    #: Auto-optimize counters of the blocks asked for at load (block → counter field → count):
    #: not the visitor's, the blocks'; read in the same round trip.
    counters: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Profile:
        return cls()

    @classmethod
    def from_fields(cls, fields: dict) -> Profile:
        """A profile from a value for every field, without the generated ``__init__``: a frozen
        dataclass sets each field through ``object.__setattr__``, which costs several times
        this, and every page view with a personalized block builds one (``to_profile``)."""
        profile = object.__new__(cls)
        profile.__dict__.update(fields)
        return profile


def visitor_key(visitor_id: str, suffix: str) -> str:
    """``<prefix>:{<visitor>}:<suffix>``: the braces keep one visitor's keys in one slot (Redis
    Cluster). Every per-visitor key is built here: the stores' and the experiments' counters."""
    return f"{get_setting('KEY_PREFIX')}:{{{visitor_id}}}:{suffix}"


def counter_key(block_id: str) -> str:
    """A block's auto-optimize counters (one hash a block, hash-tagged by the block)."""
    return f"{get_setting('KEY_PREFIX')}:opt:{{{block_id}}}"


class ProfileStore:
    """Base class: one round trip per call, keys of one visitor hash-tagged together."""

    def key(self, visitor_id: str, suffix: str) -> str:
        return visitor_key(visitor_id, suffix)

    def load(self, visitor_id: str, page_key: str | None, *, record_view: bool,
             now: float, counters: tuple[str, ...] = ()) -> Profile:
        """Return the visitor's profile; when ``record_view``, first count a page view of
        ``page_key`` at ``now`` (starting a new visit after the idle gap). ``counters``: block
        ids whose auto-optimize counters come back in ``Profile.counters``, in the same round
        trip. Raise ``StoreUnavailable`` when the backend cannot be reached."""
        raise NotImplementedError

    def load_counters(self, block_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """The auto-optimize counters of these blocks (block → counter field → count), in one
        round trip: for a block rendered before its page's profile loads carried it, and the
        admin. ``StoreUnavailable`` when the backend cannot be reached."""
        raise NotImplementedError

    def reset_counters(self, block_id: str) -> None:
        """Forget a block's auto-optimize counters (an editor starts its learning again)."""
        raise NotImplementedError

    def record_events(self, visitor_id: str, update: BehaviourUpdate, *, now: float) -> None:
        """Apply a batch's behaviour (``behaviour.summarize``) to the profile: decayed
        engagement and affinity, per-page scroll depth and dwell, per-block abandons and clicks,
        conversions. One round trip; ``StoreUnavailable`` when the backend cannot be reached."""
        raise NotImplementedError

    def clear(self, visitor_id: str) -> None:
        """Forget everything about the visitor (privacy requests, tests)."""
        raise NotImplementedError

    def set_clusters(self, assignments: Iterable[tuple[str, str]], *, run_id: int) -> int:
        """Write (visitor id, cluster slug) pairs from clustering run ``run_id`` to the profiles,
        in bulk: chunks of ``CLUSTER_ASSIGN_CHUNK`` visitors a round trip, never one a visitor.
        Other profile fields are untouched; a visitor without a profile gets one holding only the
        assignment, expiring after ``PROFILE_TTL``. Returns how many were written;
        ``StoreUnavailable`` when the backend cannot be reached."""
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
            if state.get("visits"):
                state["last_visit_end"] = previous
            state["visits"] = state.get("visits", 0) + 1
            state["visit_pageviews"] = 0
        state["visit_pageviews"] = state.get("visit_pageviews", 0) + 1
        state["total_pageviews"] = state.get("total_pageviews", 0) + 1
        state.setdefault("first_seen", now)
        state["prev_seen"] = previous
        state["last_seen"] = now
        return state, page_count + 1

    @staticmethod
    def to_profile(state: Mapping[str, float], page_count: int, *, record_view: bool,
                   now: float = 0.0, page_behaviour: tuple[float, float] = (0, 0.0),
                   blocks: Mapping[str, tuple[int, int]] | None = None, cluster: str = "",
                   counters: Mapping[str, Mapping[str, int]] | None = None) -> Profile:
        """``page_behaviour`` is (scroll depth, dwell seconds) on the page; ``blocks`` maps a
        block id to (abandons, clicks); ``cluster`` is the assigned cluster slug (its run id is
        ``state["cluster_run"]``)."""
        engagement, affinity = 0.0, {}
        if "eng" in state or "aff_at" in state:  # behaviour tracked (skipped on most renders)
            half_life = half_life_seconds()
            engagement = decay(float(state.get("eng", 0.0)), state.get("eng_at", 0.0), now,
                               half_life)
            affinity_at = state.get("aff_at", 0.0)
            affinity = {name[len(AFFINITY_PREFIX):]: decay(points, affinity_at, now, half_life)
                        for name, points in state.items() if name.startswith(AFFINITY_PREFIX)}
        abandoned = clicked = frozenset()
        if blocks:
            abandoned = frozenset(b for b, (abandons, _c) in blocks.items() if abandons)
            clicked = frozenset(b for b, (_a, clicks) in blocks.items() if clicks)
        return Profile.from_fields(dict(
            visits=int(state.get("visits", 0)),
            visit_pageviews=int(state.get("visit_pageviews", 0)),
            total_pageviews=int(state.get("total_pageviews", 0)),
            page_views=int(page_count),
            first_seen=float(state.get("first_seen", 0.0)),
            last_seen=float(state.get("prev_seen" if record_view else "last_seen", 0.0)),
            last_visit_end=float(state.get("last_visit_end", 0.0)),
            engagement=engagement,
            affinity=affinity,
            conversions=int(state.get("conv", 0)),
            page_scroll=int(page_behaviour[0]),
            page_dwell=float(page_behaviour[1]),
            abandoned=abandoned,
            clicked=clicked,
            cluster=cluster,
            cluster_run=int(state.get("cluster_run", 0)),
            counters=counters or {},
        ))


def chunked(pairs: Iterable[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    """Lists of at most ``size`` pairs (bulk writes go out a chunk a round trip)."""
    iterator = iter(pairs)
    while chunk := list(islice(iterator, size)):
        yield chunk
