"""Synthetic visitors for the demo: hidden types, their visit schedules and what they do on a page.

Each type is a set of distributions (not a script), drawn from one ``numpy.random.Generator`` so a
seed reproduces a run. What a visitor does depends on its type and on the content type
(``data-ma-kind``) of each block the page really renders: an ``affinity`` above 1 lengthens the
dwell and raises the click chance for that content type. Content types a type does not name are
neutral (1.0), so blocks added later (a ranked list of videos, deals...) get traffic too.

The events follow ``tracker.js``: an impression after ``impressionMs`` of visibility, one dwell
per block, scroll milestones up to the deepest scroll, an abandon when a seen, unclicked block is
scrolled past with less than ``abandonMs`` of dwell, clicks only on blocks with a link or button.
``simulate_traffic`` (the management command) browses the site and posts them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from microadjust_cms.tracking.schema import MAX_DWELL_MS, SCROLL_MILESTONES

from .page_reader import TrackedBlock, TrackedPage

#: A few real User-Agent strings a device class (the server derives the device from them).
USER_AGENTS: dict[str, tuple[str, ...]] = {
    "mobile": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Mobile Safari/537.36",
    ),
    "tablet": (
        "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    ),
    "desktop": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.5 Safari/605.1.15",
    ),
}

#: Conversion goal when the page names none (``data-ma-goal``): what ``microadjust.goal()``
#: called by the site's own code would send.
DEFAULT_GOAL = "purchase"


@dataclass(frozen=True)
class VisitorType:
    """The distributions one hidden type of visitor draws its behaviour from."""

    name: str
    #: Share of the population (normalized over all types).
    share: float
    #: Device class → probability.
    devices: Mapping[str, float]
    #: Return visits a day (Poisson process after the first visit).
    returns_per_day: float
    #: Mean number of page views after the first one in a visit (Poisson).
    extra_pages: float
    #: Beta(a, b) of the deepest scroll, as a share of the page.
    scroll: tuple[float, float]
    #: Log-normal dwell on a block: median (ms) and sigma.
    dwell_median_ms: float
    dwell_sigma: float
    #: Chance of clicking a block that has a link, before affinity.
    click_rate: float
    #: Chance that a visit ends in a conversion.
    conversion_rate: float
    #: Hour of day the type is most active (site time) and the spread in hours.
    peak_hour: float
    hour_spread: float
    #: Content type → multiplier on dwell (square root) and click chance; 1 for others.
    affinity: Mapping[str, float] = field(default_factory=dict)

    def affinity_for(self, kind: str) -> float:
        return self.affinity.get(kind, 1.0) if kind else 1.0


VISITOR_TYPES: tuple[VisitorType, ...] = (
    VisitorType(
        name="mobile_video_fan", share=0.3, devices={"mobile": 1.0},
        returns_per_day=0.35, extra_pages=1.5, scroll=(2.0, 5.0),
        dwell_median_ms=1800, dwell_sigma=0.6, click_rate=0.12, conversion_rate=0.02,
        peak_hour=20, hour_spread=3,
        affinity={"video": 5.0, "clip": 4.0, "news": 0.8, "article": 0.5, "longread": 0.3},
    ),
    VisitorType(
        name="desktop_deep_reader", share=0.3, devices={"desktop": 1.0},
        returns_per_day=0.8, extra_pages=2.5, scroll=(8.0, 1.5),
        dwell_median_ms=9000, dwell_sigma=0.5, click_rate=0.05, conversion_rate=0.03,
        peak_hour=9, hour_spread=3,
        affinity={"longread": 3.0, "article": 2.5, "news": 1.5, "video": 0.3, "deal": 0.5},
    ),
    VisitorType(
        name="skimmer", share=0.25, devices={"mobile": 0.45, "desktop": 0.45, "tablet": 0.1},
        returns_per_day=0.03, extra_pages=0.3, scroll=(1.2, 6.0),
        dwell_median_ms=1200, dwell_sigma=0.45, click_rate=0.02, conversion_rate=0.0,
        peak_hour=13, hour_spread=5,
    ),
    VisitorType(
        name="deal_hunter", share=0.15, devices={"desktop": 0.5, "mobile": 0.5},
        returns_per_day=0.4, extra_pages=2.0, scroll=(3.0, 3.0),
        dwell_median_ms=3500, dwell_sigma=0.5, click_rate=0.15, conversion_rate=0.4,
        peak_hour=12, hour_spread=4,
        affinity={"deal": 5.0, "offer": 4.0, "product": 3.0, "news": 0.6, "longread": 0.4},
    ),
)


@dataclass
class PlannedVisitor:
    """A synthetic visitor before it browses: its hidden type, browser and visit times."""

    index: int
    kind: VisitorType
    device: str
    user_agent: str
    #: A documentation/benchmark address (198.18.0.0/15), one per visitor.
    address: str
    visits: list[datetime]


def plan_visitors(count: int, *, days: int, end: datetime, idle_seconds: int,
                  rng: np.random.Generator,
                  types: tuple[VisitorType, ...] = VISITOR_TYPES) -> list[PlannedVisitor]:
    """``count`` visitors with hidden types and visit times in the ``days`` before ``end``.

    Visits of one visitor are at least ``idle_seconds`` plus five minutes apart, so each one is
    a new visit for the profile store and the learning jobs.
    """
    shares = np.array([t.share for t in types], dtype=float)
    chosen = rng.choice(len(types), size=count, p=shares / shares.sum())
    start = end - timedelta(days=days)
    min_gap = timedelta(seconds=idle_seconds + 300)
    visitors = []
    for index, type_index in enumerate(chosen):
        kind = types[int(type_index)]
        devices = list(kind.devices)
        weights = np.array([kind.devices[d] for d in devices], dtype=float)
        device = devices[int(rng.choice(len(devices), p=weights / weights.sum()))]
        agents = USER_AGENTS[device]
        user_agent = agents[int(rng.integers(len(agents)))]
        first_day = rng.uniform(0, days)
        returns = rng.poisson(kind.returns_per_day * (days - first_day))
        visit_days = np.sort(np.concatenate([[first_day], rng.uniform(first_day, days, returns)]))
        times = []
        for day in visit_days:
            hour = (kind.peak_hour + rng.normal(0, kind.hour_spread)) % 24
            moment = start + timedelta(days=int(day), hours=float(hour))
            if times and moment < times[-1] + min_gap:
                moment = times[-1] + min_gap
            if moment < end - timedelta(hours=1):
                times.append(moment)
        if not times:  # the drawn hour fell after the window: visit on its first day instead
            times.append(start + timedelta(days=int(first_day)))
        address = f"198.{18 + (index >> 16) % 2}.{(index >> 8) & 255}.{index & 255}"
        visitors.append(PlannedVisitor(index, kind, device, user_agent, address, times))
    return visitors


def page_weight(kind: VisitorType, kinds: list[str] | None) -> float:
    """How much a visitor of ``kind`` wants a page holding blocks of these content types (1 for
    a page not seen yet)."""
    if not kinds:
        return 1.0
    return float(np.mean([kind.affinity_for(k) for k in kinds]))


@dataclass
class PageViewEvents:
    events: list[dict[str, Any]]
    #: Milliseconds from the page view to leaving the page (the time of the last event).
    duration_ms: int
    #: The blocks clicked, in order (a conversion is attributed to the last).
    clicked: list[TrackedBlock]


def _block_event(type_: str, block: TrackedBlock, t: int, base: dict[str, Any],
                 **extra: Any) -> dict[str, Any]:
    event = {"type": type_, "t": t, **base, "block": block.block_id, "variant": block.variant,
             "pos": block.position}
    if block.kind:
        event["kind"] = block.kind
    if block.tags:
        event["tags"] = block.tags
    if block.opt:
        event["opt"] = block.opt
    event.update(extra)
    return event


def page_fields(config: dict[str, Any]) -> dict[str, Any]:
    """What the tracker adds to every event of a page: its path, id and segment stamp."""
    base: dict[str, Any] = {"path": config.get("path") or "/"}
    if isinstance(config.get("page"), int):
        base["page"] = config["page"]
    if config.get("seg"):
        base["seg"] = config["seg"]
    return base


def page_view_events(kind: VisitorType, page: TrackedPage, *, t0_ms: int, previous: str,
                     rng: np.random.Generator,
                     appeal: Callable[[TrackedBlock], float] | None = None) -> PageViewEvents:
    """The events a visitor of ``kind`` makes on ``page`` (its ``config`` must be set), in time
    order, starting with the page view at ``t0_ms``. ``appeal`` (the lift simulator's hidden
    preferences) multiplies a block's affinity by how much this visitor likes its variant."""
    config = page.config or {}
    base = page_fields(config)
    impression_ms = int(config.get("impressionMs") or 750)
    abandon_ms = int(config.get("abandonMs") or 2000)
    pageview = {"type": "pageview", "t": t0_ms, **base}
    if previous:
        pageview["previous"] = previous
    events = [pageview]
    depth = float(rng.beta(*kind.scroll))
    blocks = page.blocks
    count = max(len(blocks), 1)
    clock = t0_ms + int(rng.integers(300, 1500))
    clicked: list[TrackedBlock] = []
    milestones = [m for m in SCROLL_MILESTONES if m <= depth * 100]
    for index, block in enumerate(blocks):
        top, bottom = index / count, (index + 1) / count
        while milestones and milestones[0] <= top * 100:
            events.append({"type": "scroll", "t": clock, "value": milestones.pop(0), **base})
        if top > depth:
            break
        affinity = kind.affinity_for(block.kind) * (appeal(block) if appeal is not None else 1.0)
        dwell = float(rng.lognormal(np.log(kind.dwell_median_ms * affinity ** 0.5), kind.dwell_sigma))
        dwell = int(min(dwell, MAX_DWELL_MS // 10))
        seen = dwell >= impression_ms
        if seen:
            events.append(_block_event("impression", block, clock + impression_ms, base))
        is_clicked = (seen and bool(block.links)
                      and rng.random() < min(0.95, kind.click_rate * affinity))
        if is_clicked:
            label = block.links[int(rng.integers(len(block.links)))]
            extra = {"name": label} if label else {}
            events.append(_block_event("click", block, clock + dwell - 1, base, **extra))
            clicked.append(block)
        clock += dwell
        if dwell >= 100:
            events.append(_block_event("dwell", block, clock, base, value=dwell))
        if seen and not is_clicked and bottom <= depth and dwell < abandon_ms:
            events.append(_block_event("abandon", block, clock, base, value=dwell))
    for milestone in milestones:
        clock += int(rng.integers(200, 2000))
        events.append({"type": "scroll", "t": clock, "value": milestone, **base})
    return PageViewEvents(events, clock - t0_ms, clicked)


def conversion_event(page: TrackedPage, block: TrackedBlock | None, *, t_ms: int,
                     rng: np.random.Generator) -> dict[str, Any]:
    """A conversion on ``page``, named after a goal the page declares (else ``DEFAULT_GOAL``),
    attributed to ``block`` when the visitor clicked one."""
    config = page.config or {}
    base = page_fields(config)
    goals = (block.goals if block is not None and block.goals else page.goals) or [DEFAULT_GOAL]
    name = goals[int(rng.integers(len(goals)))][:100]
    if block is not None:
        return _block_event("conversion", block, t_ms, base, name=name)
    return {"type": "conversion", "t": t_ms, "name": name, **base}
