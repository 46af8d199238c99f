"""Behaviour: what a batch of tracked events changes in the visitor's profile.

Plain functions, no I/O: ``summarize`` turns validated event rows into one ``BehaviourUpdate``
that a profile store applies in a single round trip; ``engagement_score`` and friends turn the
stored, decayed totals back into signal values.

Engagement (documented in docs/tracking.md): every event earns points,

    pageview 1 · impression 0.5 · dwell 1 per 10 s (at most 6 an event) · scroll milestone 0.5
    · click 3 · conversion 10 · abandon 0,

which decay exponentially with a half-life of ``ENGAGEMENT_HALF_LIFE_DAYS`` (14 days):
``E(now) = Σ points · 2^(-(now - t) / half_life)``. The score is
``round(100 · (1 - e^(-E / ENGAGEMENT_SCALE)))`` (scale 20 points: 10 points give 39, 20 give
63, 40 give 86) and the level is low below 30, medium below 60, high from 60
(``ENGAGEMENT_LEVELS``). Content affinity uses the same decay over the points a block's content
type and tags earn (impression 0.5, dwell 1 per 10 s up to 6, click 3, conversion 5).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ENGAGEMENT_POINTS = {"pageview": 1.0, "impression": 0.5, "scroll": 0.5, "click": 3.0,
                     "conversion": 10.0, "abandon": 0.0}
AFFINITY_POINTS = {"impression": 0.5, "click": 3.0, "conversion": 5.0}
DWELL_POINTS_PER_SECOND = 0.1
DWELL_POINTS_CAP = 6.0
#: Prefix of affinity fields in the stored profile state (``aff:video``).
AFFINITY_PREFIX = "aff:"

#: Auto-optimize (``rendering.optimizer``): a block's wrapper says ``data-ma-opt="<context>
#: <goal>"`` and the tracker copies it onto the block's events as ``opt``. The context is the
#: one the variant was chosen in: ``all``, ``in``/``out`` of the editor's segment, a cluster
#: (``cluster-3``) or ``none``; the goal is ``click`` or a conversion name.
OPT_CONTEXT_RE = re.compile(r"^(all|in|out|none|cluster-[0-9]{1,6})\Z")
OPT_GOAL_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,60}\Z")
#: Counter fields of a block (``counter_field``): trials (impressions) and successes (goals).
TRIALS, SUCCESSES = "n", "s"


def counter_field(kind: str, context: str, variant: str) -> str:
    """``n|<context>|<variant>`` or ``s|<context>|<variant>``: one counter of a block's hash
    (a variant name may hold ``|``: the field is split on the first two only)."""
    return f"{kind}|{context}|{variant}"


def parse_opt(value: str) -> tuple[str, str] | None:
    """(context, goal) of a valid ``opt`` value, else None."""
    context, _, goal = value.partition(" ")
    if OPT_CONTEXT_RE.match(context) and OPT_GOAL_RE.match(goal):
        return context, goal
    return None


@dataclass
class BehaviourUpdate:
    """What one batch adds: engagement and affinity points (before decay), per-page scroll depth
    (a maximum) and dwell seconds (a sum), per-block abandons and clicks, conversions."""

    engagement: float = 0.0
    affinity: dict[str, float] = field(default_factory=dict)
    page_scroll: dict[str, int] = field(default_factory=dict)
    page_dwell: dict[str, float] = field(default_factory=dict)
    block_abandons: dict[str, int] = field(default_factory=dict)
    block_clicks: dict[str, int] = field(default_factory=dict)
    conversions: int = 0
    #: Auto-optimize counters: block → counter field (``counter_field``) → increment.
    counters: dict[str, dict[str, int]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.engagement or self.affinity or self.page_scroll or self.page_dwell
                    or self.block_abandons or self.block_clicks or self.conversions
                    or self.counters)


def profile_page_key(page_id: Any, path: str | None) -> str:
    """The profile's key for a page: its id, else its path. Page views (the visitor context)
    and tracked behaviour (collect) both use it, so they meet on the same page."""
    return str(page_id) if page_id else (path or "")[:200]


def _dwell_points(milliseconds: int | None) -> float:
    return min(DWELL_POINTS_CAP, (milliseconds or 0) / 1000 * DWELL_POINTS_PER_SECOND)


def summarize(rows: Iterable[Mapping[str, Any]]) -> BehaviourUpdate:
    """One update from validated event rows (``tracking.schema.validate_batch``)."""
    update = BehaviourUpdate()
    for row in rows:
        kind, block = row["type"], row.get("block_id") or ""
        page = profile_page_key(row.get("page_id"), row.get("path"))
        if kind == "dwell":
            points = _dwell_points(row.get("value"))
            if page:
                update.page_dwell[page] = update.page_dwell.get(page, 0.0) + (row.get("value") or 0) / 1000
        else:
            points = ENGAGEMENT_POINTS.get(kind, 0.0)
        update.engagement += points
        if kind == "scroll" and page:
            update.page_scroll[page] = max(update.page_scroll.get(page, 0), int(row["value"]))
        elif kind == "abandon" and block:
            update.block_abandons[block] = update.block_abandons.get(block, 0) + 1
        elif kind == "click" and block:
            update.block_clicks[block] = update.block_clicks.get(block, 0) + 1
        elif kind == "conversion":
            update.conversions += 1
        affinity = points if kind == "dwell" else AFFINITY_POINTS.get(kind, 0.0)
        if affinity:
            for key in content_keys(row):
                update.affinity[key] = update.affinity.get(key, 0.0) + affinity
        if row.get("opt") and block:
            _count_trial(update, row, kind, block)
    return update


def _count_trial(update: BehaviourUpdate, row: Mapping[str, Any], kind: str, block: str) -> None:
    """An impression is a trial of the variant in its context; a click (goal ``click``) or a
    conversion named as the goal is a success."""
    parsed = parse_opt(row["opt"])
    if parsed is None:
        return
    context, goal = parsed
    if kind == "impression":
        counter = TRIALS
    elif (kind == "click" and goal == "click") or (kind == "conversion" and row.get("name") == goal):
        counter = SUCCESSES
    else:
        return
    fields = update.counters.setdefault(block, {})
    name = counter_field(counter, context, row.get("variant") or "")
    fields[name] = fields.get(name, 0) + 1


def content_keys(row: Mapping[str, Any]) -> list[str]:
    """The content type and tags an event's block declared (``data-ma-kind`` / ``-tags``)."""
    keys = [row["content_type"]] if row.get("content_type") else []
    keys.extend(tag for tag in (row.get("tags") or "").split() if tag not in keys)
    return keys


def decay(value: float, since: float, now: float, half_life: float) -> float:
    """``value`` recorded at ``since``, as of ``now``."""
    if value <= 0 or since <= 0 or now <= since:
        return max(value, 0.0)
    return value * 0.5 ** ((now - since) / half_life)


def apply_update(state: dict[str, float], update: BehaviourUpdate, *, now: float,
                 half_life: float) -> dict[str, float]:
    """The profile state after ``update`` (for stores that compute in Python; the Redis store's
    script does the same arithmetic)."""
    state = dict(state)
    state["eng"] = decay(state.get("eng", 0.0), state.get("eng_at", 0.0), now, half_life) + update.engagement
    state["eng_at"] = now
    if update.affinity:
        since = state.get("aff_at", 0.0)
        for key in [k for k in state if k.startswith(AFFINITY_PREFIX)]:
            state[key] = decay(state[key], since, now, half_life)
        for key, points in update.affinity.items():
            name = AFFINITY_PREFIX + key
            state[name] = state.get(name, 0.0) + points
        state["aff_at"] = now
    if update.conversions:
        state["conv"] = state.get("conv", 0) + update.conversions
    return state


def engagement_score(points: float, scale: float) -> int:
    """0 to 100: ``round(100 · (1 - e^(-points / scale)))``."""
    return round(100 * (1 - math.exp(-max(points, 0.0) / scale)))


def engagement_level(score: int, thresholds: tuple[int, int]) -> str:
    medium, high = thresholds
    return "high" if score >= high else "medium" if score >= medium else "low"


def top_affinity(affinity: Mapping[str, float], minimum: float) -> str | None:
    """The content type or tag with the most (decayed) points, if it has at least ``minimum``;
    ties go to the name that sorts first, so the answer is stable."""
    best = None
    for name, points in sorted(affinity.items()):
        if points >= minimum and (best is None or points > affinity[best]):
            best = name
    return best
