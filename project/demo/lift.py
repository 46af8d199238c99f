"""The lift simulator: does micro-adjustment raise engagement, and how close does it get to an
oracle that knows each visitor's hidden type?

A seeded population (the demo's four visitor types plus struggling learners) with **hidden
preferences** browses the real demo site over simulated days: real pages through the real
middleware, events posted to the real collect endpoint (schema, profile updates, auto-optimize
counters), and, for the arms that learn, the real nightly jobs (recluster, train) at the end of
each day. The same population, with the same random draws, goes through each arm in turn, from an
empty event table and profile store:

- ``holdout``: everybody in the global holdout: the defaults everywhere;
- ``rules``: the editors' rules only (no clusters, no engagement model, no auto-optimize);
- ``learning``: rules, nightly clusters and the engagement model's ranking;
- ``full``: all of that plus auto-optimize;
- ``oracle``: each block shows the variant the visitor's hidden type likes best and the ranked
  list is in the order of the type's affinities (the simulator swaps the decision functions for
  this arm only: an upper bound, not a feature).

What a visitor does is ``traffic.page_view_events``: the chance of clicking a block and the dwell
on it grow with the type's affinity for the block's content type, times here its **appeal**
(``APPEAL``: how much the type likes the variant shown). Clicking a block that holds a
``data-ma-goal`` element (the course module's "finished" button) also sends that conversion, as
the tracker does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import time_machine
from django.core.cache import caches
from django.core.management import call_command
from django.test import Client, override_settings
from scipy import stats

from microadjust_cms.conf import get_setting
from microadjust_cms.rendering import blocks as personalized_blocks
from microadjust_cms.rendering import ranked_blocks
from microadjust_cms.rendering.decisions import Decision, decide
from microadjust_cms.tracking.models import Event
from microadjust_cms.visitor.context import visitor_cookie_signer

from .page_reader import TrackedBlock, TrackedPage, read_page
from .traffic import (
    VISITOR_TYPES,
    PlannedVisitor,
    VisitorType,
    page_view_events,
    page_weight,
    plan_visitors,
)

LEARNERS = (
    VisitorType(
        name="struggling_learner", share=0.2, devices={"mobile": 0.5, "desktop": 0.5},
        returns_per_day=0.9, extra_pages=1.5, scroll=(1.5, 3.0),
        dwell_median_ms=2000, dwell_sigma=0.5, click_rate=0.10, conversion_rate=0.0,
        peak_hour=18, hour_spread=3, affinity={"lesson": 4.0, "video": 1.5, "longread": 0.5},
    ),
)
POPULATION: tuple[VisitorType, ...] = (*VISITOR_TYPES, *LEARNERS)

#: The hidden preferences: visitor type → variant name → appeal (1 when not named). The editors'
#: rules target some of these well (the mobile banner for phone users), some not at all (which
#: help a struggling learner needs), and some hurt a type (depth for skimmers).
APPEAL: dict[str, dict[str, float]] = {
    "mobile_video_fan": {"mobile": 2.0, "video": 3.0, "evening": 1.4, "second-chance": 1.5,
                         "in-depth": 0.5, "simpler": 1.2},
    "desktop_deep_reader": {"in-depth": 2.5, "returning": 1.6, "morning": 1.4, "newsletter": 1.8,
                            "loyal": 1.6, "simpler": 0.6},
    "skimmer": {"second-chance": 2.2, "simpler": 2.0, "repeat-view": 1.5, "in-depth": 0.4,
                "mobile": 1.3},
    "deal_hunter": {"newsletter": 1.6, "repeat-view": 1.8, "returning": 1.3, "mobile": 1.2},
    "struggling_learner": {"simpler": 3.5, "video": 1.5, "second-chance": 1.5},
}

ARMS = ("holdout", "rules", "learning", "full", "oracle", "oracle-any")
ARM_LABELS = {
    "holdout": "global holdout (defaults)",
    "rules": "editor rules only",
    "learning": "rules + clusters + ranking",
    "full": "+ auto-optimize (full system)",
    "oracle": "oracle (knows the hidden type)",
    "oracle-any": "oracle, any variant (ignores the rules)",
}
#: Settings per arm (the holdout and the oracle fetch pages as held-out visitors: the oracle then
#: decides itself).
ARM_SETTINGS: dict[str, dict[str, Any]] = {
    "holdout": {"MICROADJUST_EXPERIMENT_HOLDOUT": 1.0, "MICROADJUST_OPTIMIZE": False},
    "rules": {"MICROADJUST_EXPERIMENT_HOLDOUT": 0.0, "MICROADJUST_OPTIMIZE": False},
    "learning": {"MICROADJUST_EXPERIMENT_HOLDOUT": 0.0, "MICROADJUST_OPTIMIZE": False},
    "full": {"MICROADJUST_EXPERIMENT_HOLDOUT": 0.0, "MICROADJUST_OPTIMIZE": True},
    "oracle": {"MICROADJUST_EXPERIMENT_HOLDOUT": 0.0, "MICROADJUST_OPTIMIZE": False},
    "oracle-any": {"MICROADJUST_EXPERIMENT_HOLDOUT": 0.0, "MICROADJUST_OPTIMIZE": False},
}
NIGHTLY = {"learning", "full"}
#: Share of visits that start on the home page.
HOME_LANDING = 0.5
#: The request header the oracle reads the hidden type from (sent by the oracle arm only).
TYPE_HEADER = "HTTP_X_LIFT_TYPE"


#: The run's own profile store: a local-memory cache large enough to keep every simulated
#: visitor (Django's default keeps 300 entries and culls the rest: profiles, clusters and
#: counters would vanish mid-run), and the database sink, so the nightly jobs see every event
#: at once. The site's own Redis, if it has one, is left alone.
LIFT_CACHE = "microadjust-lift"


def lift_settings() -> dict[str, Any]:
    from django.conf import settings

    return {
        "CACHES": {**settings.CACHES, LIFT_CACHE: {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": LIFT_CACHE,
            "OPTIONS": {"MAX_ENTRIES": 10_000_000}}},
        "MICROADJUST_CACHE_ALIAS": LIFT_CACHE,
        "MICROADJUST_PROFILE_STORE": "microadjust_cms.visitor.stores.cache.CacheProfileStore",
        "MICROADJUST_EVENT_SINK": "microadjust_cms.tracking.sinks.database.DatabaseSink",
    }


@contextlib.contextmanager
def fresh_stores() -> Iterator[None]:
    """The store and sink objects are made once a process: remade for the run and after it."""
    from microadjust_cms.tracking.sinks import get_event_sink
    from microadjust_cms.visitor.stores import get_profile_store

    get_profile_store.cache_clear()
    get_event_sink.cache_clear()
    try:
        yield
    finally:
        get_profile_store.cache_clear()
        get_event_sink.cache_clear()


def block_root(block_id: str) -> str:
    """A ranked list's item ids are ``<list id>-<item key>``: counted as the list."""
    return "recommended" if block_id.startswith("recommended-") else block_id


def appeal(type_name: str, variant: str) -> float:
    return APPEAL.get(type_name, {}).get(variant, 1.0)


@dataclass
class Tally:
    """One arm's outcome, per simulated day and per visit."""

    impressions: int = 0
    clicks: int = 0
    conversions: int = 0
    #: Per visit: (day, clicks, impressions, conversions, session seconds).
    visits: list[tuple[int, int, int, int, float]] = field(default_factory=list)
    #: Per block (a ranked list's items counted as the list): (event type) → count.
    blocks: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))


@contextlib.contextmanager
def oracle_decisions(*, any_variant: bool) -> Iterator[None]:
    """For the oracle arms only: every personalized block shows the variant the visitor's hidden
    type likes best among those that match the visitor (``any_variant``: among all of the
    block's variants, whatever their conditions), and every ranked list is in the order of the
    type's affinities. Swapped back afterwards."""
    type_by_name = {t.name: t for t in POPULATION}

    def oracle_decide(value, visitor, **kwargs):
        name = visitor.request.META.get(TYPE_HEADER)
        if name is None or kwargs.get("prefer") or kwargs.get("exclude"):
            return decide(value, visitor, **kwargs)
        # What the editors' rules show is kept unless the type likes another variant better.
        shown = decide(value, visitor)
        best, best_appeal = shown, appeal(name, shown.variant)
        for variant, test, position in value.program():
            if appeal(name, variant) > best_appeal and (any_variant or test(visitor)):
                best = Decision(variant, value.variant_content(position), "oracle")
                best_appeal = appeal(name, variant)
        if appeal(name, "default") > best_appeal:
            best = Decision("default", value.default_content(), "oracle")
        return best

    def oracle_ranking(self, visitor, meta=None):
        kind = type_by_name.get(visitor.request.META.get(TYPE_HEADER, ""))
        items = [item for _key, item, _attrs in meta or self.item_meta()]
        if kind is None:
            return original_ranking(self, visitor, meta)
        order = sorted(range(len(items)), key=lambda i: (-kind.affinity_for(items[i].content_type), i))
        return ranked_blocks.Ranking(order, None, ranked_blocks.MODEL)

    original_decide = personalized_blocks.decide
    original_ranking = ranked_blocks.RankedValue.ranking
    personalized_blocks.decide = oracle_decide
    ranked_blocks.RankedValue.ranking = oracle_ranking
    try:
        yield
    finally:
        personalized_blocks.decide = original_decide
        ranked_blocks.RankedValue.ranking = original_ranking


def reset_state() -> None:
    """An arm starts from nothing learned: no events, clusters, models or rollups, and an empty
    profile store (the run's own cache, see ``run``)."""
    from microadjust_cms.analytics.models import Anomaly, BlockRollup, PageRollup, RollupState
    from microadjust_cms.jobs.models import LearningJob
    from microadjust_cms.learning.models import Cluster, ClusterRun, EngagementModel
    from microadjust_cms.learning.scoring import model_cache
    from microadjust_cms.segments.clusters import cluster_cache
    from microadjust_cms.visitor.context import optimized_blocks

    for model in (Event, BlockRollup, PageRollup, RollupState, Anomaly, LearningJob, Cluster,
                  ClusterRun, EngagementModel):
        model.objects.all().delete()
    caches[get_setting("CACHE_ALIAS")].clear()
    optimized_blocks.clear()
    model_cache.invalidate()
    cluster_cache.invalidate()


class LiftRun:
    """One simulated run of every arm over the same seeded population."""

    def __init__(self, *, visitors: int, days: int, seed: int, paths: list[str],
                 host: str = "localhost", nightly: bool = True, progress: Any = None) -> None:
        self.visitors, self.days, self.seed, self.paths = visitors, days, seed, paths
        self.host, self.origin = host, f"http://{host}"
        self.nightly, self.progress = nightly, progress
        self.page_kinds: dict[str, list[str]] = {}
        self.job_failures: list[str] = []
        #: After the ``full`` arm: what each auto-optimized block learned (``convergence``).
        self.convergence: list[dict[str, Any]] = []

    def plan(self) -> tuple[list[PlannedVisitor], datetime]:
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        rng = np.random.default_rng(np.random.SeedSequence(self.seed).spawn(1)[0])
        return plan_visitors(self.visitors, days=self.days, end=end,
                             idle_seconds=get_setting("VISIT_IDLE_SECONDS"), rng=rng,
                             types=POPULATION), end

    def run_arm(self, arm: str) -> Tally:
        visitors, end = self.plan()
        start = end - timedelta(days=self.days)
        seeds = np.random.SeedSequence([self.seed, 1]).spawn(len(visitors))
        rngs = [np.random.default_rng(s) for s in seeds]  # the same draws in every arm
        clients = []
        for v in visitors:
            extra = {TYPE_HEADER: v.kind.name} if arm.startswith("oracle") else {}
            client = Client(HTTP_USER_AGENT=v.user_agent, HTTP_HOST=self.host, REMOTE_ADDR=v.address,
                            **extra)
            # A visitor id drawn from the seed (the cookie a first response would set), so that
            # what depends on it (auto-optimize's per-visit draws) repeats with the seed too.
            client.cookies[get_setting("COOKIE_NAME")] = visitor_cookie_signer().sign(
                hashlib.sha256(f"{self.seed}:{v.index}".encode()).hexdigest()[:32])
            clients.append(client)
        schedule = sorted((moment, v.index, number) for v in visitors
                          for number, moment in enumerate(v.visits))
        tally = Tally()
        oracle = (oracle_decisions(any_variant=arm == "oracle-any") if arm.startswith("oracle")
                  else contextlib.nullcontext())
        with override_settings(**lift_settings(), **ARM_SETTINGS[arm]), fresh_stores(), oracle, \
                time_machine.travel(schedule[0][0], tick=False) as traveller:
            reset_state()
            day_done = 0
            for moment, index, number in schedule:
                day = int((moment - start).total_seconds() // 86400)
                while day > day_done:  # the nightly jobs of each day that has ended
                    day_done += 1
                    if arm in NIGHTLY and self.nightly:
                        traveller.move_to(start + timedelta(days=day_done, minutes=-1))
                        self.nightly_jobs()
                traveller.move_to(moment)
                self.visit(visitors[index], clients[index], rngs[index], number, day, tally,
                           traveller)
                if self.progress is not None:
                    self.progress.update()
            if arm == "full":
                self.convergence = convergence(visitors, clients)
        return tally

    def nightly_jobs(self) -> None:
        """Recluster and train as the nightly beat would; too little data yet is not an error
        here (the job says so and the site keeps what it had)."""
        logging.disable(logging.CRITICAL)  # a job with too little data logs its refusal
        try:
            with open(os.devnull, "w") as sink:
                for command in ("microadjust_recluster", "microadjust_train"):
                    try:
                        call_command(command, verbosity=0, no_progress=True, stdout=sink, stderr=sink)
                    except Exception as exc:  # noqa: BLE001 - reported, the run goes on
                        self.job_failures.append(f"{command}: {exc}"[:200])
        finally:
            logging.disable(logging.NOTSET)

    def visit(self, visitor: PlannedVisitor, client: Client, rng: np.random.Generator,
              number: int, day: int, tally: Tally, traveller: Any) -> None:
        kind = visitor.kind
        path = self.paths[0] if number == 0 or rng.random() < HOME_LANDING else self.next_path(
            kind, None, rng)
        views = 1 + int(rng.poisson(kind.extra_pages))
        previous, clicks, impressions, conversions, seconds = "", 0, 0, 0, 0.0
        for _view in range(views):
            headers = {"referer": self.origin + previous} if previous else {}
            response = client.get(path, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"GET {path} answered {response.status_code}")
            page = read_page(response.content.decode(response.charset or "utf-8"))
            self.page_kinds[path] = [b.kind for b in page.blocks]
            events = self.page_events(kind, page, previous, rng)
            for event in events:
                if event.get("block") and event["type"] in ("impression", "click", "conversion"):
                    tally.blocks[block_root(event["block"])][event["type"]] += 1
            impressions += sum(e["type"] == "impression" for e in events)
            clicks += sum(e["type"] == "click" for e in events)
            conversions += sum(e["type"] == "conversion" for e in events)
            duration = (events[-1]["t"] - events[0]["t"]) / 1000 if events else 0.0
            seconds += duration
            traveller.shift(duration + 0.1)
            if page.config is not None:
                endpoint = page.config.get("endpoint") or "/microadjust/collect/"
                limit = get_setting("COLLECT_MAX_EVENTS")
                for first in range(0, len(events), limit):
                    posted = client.post(endpoint, data=json.dumps({"v": 1, "events": events[first:first + limit]}),
                                         content_type="application/json", headers={"origin": self.origin})
                    if posted.status_code != 204:
                        raise RuntimeError(f"collect answered {posted.status_code}: {posted.content[:300]!r}")
            traveller.shift(float(rng.uniform(2, 15)))
            previous, path = path, self.next_path(kind, path, rng)
        tally.impressions += impressions
        tally.clicks += clicks
        tally.conversions += conversions
        tally.visits.append((day, clicks, impressions, conversions, seconds))

    def page_events(self, kind: VisitorType, page: TrackedPage, previous: str,
                    rng: np.random.Generator) -> list[dict[str, Any]]:
        """The tracker's events for this view; a click on a block holding a goal converts."""
        from django.utils import timezone

        t0 = int(timezone.now().timestamp() * 1000)
        view = page_view_events(kind, page, t0_ms=t0, previous=previous, rng=rng,
                                appeal=lambda block: appeal(kind.name, block.variant))
        events = []
        by_id: dict[str, TrackedBlock] = {b.block_id: b for b in page.blocks}
        for event in view.events:
            events.append(event)
            block = by_id.get(event.get("block", ""))
            if event["type"] == "click" and block is not None and block.goals:
                conversion = {k: v for k, v in event.items() if k != "name"}
                conversion.update(type="conversion", name=block.goals[0], t=event["t"] + 1)
                events.append(conversion)
        return events

    def next_path(self, kind: VisitorType, current: str | None, rng: np.random.Generator) -> str:
        weights = np.array([page_weight(kind, self.page_kinds.get(p)) * (0.3 if p == current else 1.0)
                            for p in self.paths])
        return self.paths[int(rng.choice(len(self.paths), p=weights / weights.sum()))]


def convergence(visitors: list[PlannedVisitor], clients: list[Client]) -> list[dict[str, Any]]:
    """Per auto-optimized block and context: the variant the block now favours (posterior mean)
    and the one the context's visitors like best by their hidden types (mean appeal over the
    context's members), and whether the two agree."""
    from wagtail.models import Page

    from microadjust_cms.rendering.block_ids import object_personalized_values
    from microadjust_cms.rendering.optimizer import posteriors, tallies
    from microadjust_cms.visitor.stores import get_profile_store

    store = get_profile_store()
    members: dict[str, list[str]] = defaultdict(list)
    for visitor, client in zip(visitors, clients, strict=True):
        cookie = client.cookies.get(get_setting("COOKIE_NAME"))
        if cookie is None or not cookie.value:
            continue
        visitor_id = visitor_cookie_signer().unsign(cookie.value)
        cluster = store.load(visitor_id, None, record_view=False, now=0).cluster
        members[cluster if cluster.startswith("cluster-") else "none"].append(visitor.kind.name)
    report = []
    for page in Page.objects.live().specific():
        for value in object_personalized_values(page):
            if value.optimizer is None:
                continue
            candidates = [name for name, _test, _position in value.program()] + ["default"]
            counters = store.load_counters([value.block_id]).get(value.block_id, {})
            for context in sorted({ctx for ctx, _variant in tallies(counters)}):
                posts = posteriors(candidates, counters, context, get_setting("OPTIMIZE_PRIOR_TRIALS"))
                trials = sum(p.trials for p in posts.values())
                leader = max(posts, key=lambda name: posts[name].mean)
                kinds = Counter(members.get(context) or [])
                report.append(judge({"block": value.block_id, "context": context, "trials": trials,
                                     "members": dict(sorted(kinds.items())), "leader": leader},
                                    candidates))
    return report


def judge(row: dict[str, Any], candidates: list[str]) -> dict[str, Any]:
    """The variant the context's members like best (mean appeal over its members' hidden types),
    and whether the block's favourite is as good (a tie counts: equal appeal is no mistake)."""
    members = row["members"]
    total = sum(members.values())

    def mean_appeal(variant: str) -> float:
        return sum(appeal(kind, variant) * n for kind, n in members.items()) / total if total else 0.0

    best = max(candidates, key=lambda name: (mean_appeal(name), name == row["leader"]))
    return {**row, "best_by_hidden_types": best,
            "converged": bool(total) and mean_appeal(row["leader"]) >= mean_appeal(best) - 1e-9}


# -- figures ---------------------------------------------------------------------------------------

def wilson(successes: int, trials: int) -> tuple[float, float]:
    if not trials:
        return (0.0, 0.0)
    low, high = stats.binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return float(low), float(high)


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return 0.0, 0.0, 0.0
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, mean, mean
    half = float(stats.sem(values) * stats.t.ppf(0.975, len(values) - 1))
    return mean, mean - half, mean + half


def arm_figures(tally: Tally, days: range | None = None) -> dict[str, Any]:
    """CTR (clicks per impression), conversions per visit and session seconds per visit, each
    with a 95% interval (Wilson for CTR, t for the per-visit means)."""
    visits = [v for v in tally.visits if days is None or v[0] in days]
    clicks = sum(v[1] for v in visits)
    impressions = sum(v[2] for v in visits)
    conversions = [float(v[3]) for v in visits]
    seconds = [v[4] for v in visits]
    ctr_low, ctr_high = wilson(clicks, impressions)
    conv = mean_interval(conversions)
    session = mean_interval(seconds)
    return {"visits": len(visits), "impressions": impressions, "clicks": clicks,
            "ctr": clicks / impressions if impressions else 0.0, "ctr_ci": [ctr_low, ctr_high],
            "conversions_per_visit": conv[0], "conversions_ci": [conv[1], conv[2]],
            "session_seconds": session[0], "session_ci": [session[1], session[2]]}


METRICS = ("ctr", "conversions_per_visit", "session_seconds")


def lift_table(figures: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per arm and metric: lift over the holdout, and the share of each oracle's lift reached."""
    base = figures["holdout"]

    def lift(arm_fig: dict[str, Any], metric: str) -> float:
        return arm_fig[metric] / base[metric] - 1 if base[metric] else math.nan

    table: dict[str, dict[str, Any]] = {}
    for arm, arm_fig in figures.items():
        row = {}
        for metric in METRICS:
            value = lift(arm_fig, metric)
            row[metric] = {"lift": value}
            for oracle in ("oracle", "oracle-any"):
                if oracle in figures:
                    reference = lift(figures[oracle], metric)
                    key = "share_of_oracle" if oracle == "oracle" else "share_of_oracle_any"
                    row[metric][key] = value / reference if reference else math.nan
        table[arm] = row
    return table


def daily_ctr(tallies: dict[str, Tally], days: int) -> dict[str, list[float]]:
    per_day: dict[str, list[float]] = defaultdict(list)
    for arm, tally in tallies.items():
        for day in range(days):
            per_day[arm].append(arm_figures(tally, range(day, day + 1))["ctr"])
    return dict(per_day)
