"""Synthetic traffic for the demo: visitors with hidden types browse the site and post events.

Every visitor is a Django test ``Client`` with its own cookies, User-Agent and address. It gets
real pages, reads the tracked blocks from the HTML (``page_reader``) and posts event batches to
the real collect endpoint with an ``Origin`` header, as ``tracker.js`` does, so events and
profiles go through the same validation and storage as a browser's. Server time is moved to each
visit with time-machine (visits over ``--days`` days, apart by more than the idle time), so visit
counts, recency and time-based splits are real. The visitor types are in ``project/demo/traffic.py``.

No setting is relaxed for the run: every batch must be answered 204. Each visitor has its own
cookie (rate-limited by id) and address (newcomers are rate-limited by address) and browses at
a human pace in simulated time, far under the default ``MICROADJUST_COLLECT_RATE``; a refusal
caused by the site's settings (rate limit, origin, size) stops the run and says which setting.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
import time_machine
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test import Client
from django.utils import timezone
from wagtail.models import Site

from microadjust_cms.conf import get_setting
from microadjust_cms.visitor.context import visitor_cookie_signer
from project.demo.page_reader import TrackedPage, read_page
from project.demo.traffic import (
    VISITOR_TYPES,
    PlannedVisitor,
    conversion_event,
    page_view_events,
    page_weight,
    plan_visitors,
)

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover - tqdm is in the demo extras
    tqdm = None

#: Share of visits that start on the home page (the others land on any page, as from search).
HOME_LANDING = 0.6
#: Refusals that come from the site's settings, not from the batch: the run cannot go on.
SETTINGS_REFUSALS = {
    403: "the endpoint refused the Origin {origin!r}: pass --host with a host in ALLOWED_HOSTS, or "
         "add the origin to MICROADJUST_COLLECT_ALLOWED_ORIGINS",
    413: "the batch is larger than MICROADJUST_COLLECT_MAX_BYTES",
    429: "rate limited: raise MICROADJUST_COLLECT_RATE (now {rate!r}) for this run",
    503: "the database could not store the batch",
}


def site_paths() -> list[str]:
    """Paths of the default site's live, public pages, its home page first."""
    site = Site.objects.filter(is_default_site=True).select_related("root_page").first()
    if site is None:
        return []
    pages = site.root_page.get_descendants(inclusive=True).live().public().order_by("path")
    return [url for url in (page.relative_url(site) for page in pages) if url]


class Command(BaseCommand):
    help = ("Synthetic visitors with hidden types (mobile video fans, desktop deep readers, "
            "skimmers, deal hunters) browse the site over simulated days and post events to the "
            "collect endpoint, so clustering and the engagement model have data.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--visitors", type=int, default=300, help="number of visitors (300)")
        parser.add_argument("--days", type=int, default=21,
                            help="days of traffic, ending at the start of today (UTC) (21)")
        parser.add_argument("--seed", type=int, default=4, help="random seed (4)")
        parser.add_argument("--truth", type=Path,
                            help="write {visitor id: hidden type} to this JSON file")
        parser.add_argument("--host", default="localhost",
                            help="Host (and Origin) the visitors send; must be in ALLOWED_HOSTS")
        parser.add_argument("--path", action="append", default=[], dest="paths",
                            help="also visit this path (repeatable); the site's live pages always")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["visitors"] < 1:
            raise CommandError("--visitors must be at least 1")
        if options["days"] < 1:
            raise CommandError("--days must be at least 1")
        paths = site_paths()
        paths += [p for p in options["paths"] if p not in paths]
        if not paths:
            raise CommandError("No pages to visit: run `manage.py load_demo` first, or pass --path.")
        if any(not p.startswith("/") for p in paths):
            raise CommandError("--path takes paths starting with /")
        self.host = options["host"]
        self.origin = f"http://{self.host}"
        self.paths = paths
        self.page_kinds: dict[str, list[str]] = {}
        self.totals: dict[str, Counter] = defaultdict(Counter)
        self.refusals: list[str] = []
        self.refused = 0
        self.accepted = 0
        self.batches = 0
        self.max_events = get_setting("COLLECT_MAX_EVENTS")

        seed = np.random.SeedSequence(options["seed"])
        plan_seed, *visitor_seeds = seed.spawn(options["visitors"] + 1)
        end = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        visitors = plan_visitors(options["visitors"], days=options["days"], end=end,
                                 idle_seconds=get_setting("VISIT_IDLE_SECONDS"),
                                 rng=np.random.default_rng(plan_seed))
        self.clients = [Client(HTTP_USER_AGENT=v.user_agent, HTTP_HOST=self.host,
                               REMOTE_ADDR=v.address) for v in visitors]
        self.rngs = [np.random.default_rng(s) for s in visitor_seeds]
        self.visitor_ids: dict[int, str] = {}
        schedule = sorted((moment, v.index, number)
                          for v in visitors for number, moment in enumerate(v.visits))
        progress = self._progress(len(schedule), options)
        try:
            with time_machine.travel(schedule[0][0], tick=False) as traveller:
                for moment, index, number in schedule:
                    traveller.move_to(moment)
                    self._visit(visitors[index], number, traveller)
                    if progress is not None:
                        progress.update()
        finally:
            if progress is not None:
                progress.close()
        if options["truth"]:
            truth = {self.visitor_ids[v.index]: v.kind.name for v in visitors
                     if v.index in self.visitor_ids}
            options["truth"].write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
        self._summary(visitors, options)
        if not self.batches:
            raise CommandError("No page visited has the tracker ({% microadjust_tracker %}), so no "
                               "event was sent: run `manage.py load_demo` first, or pass --path.")
        if self.refused:
            raise CommandError(f"{self.refused} events in refused batches: "
                               + "; ".join(self.refusals[:5]))

    def _progress(self, total: int, options: dict[str, Any]) -> Any:
        if tqdm is None or options["no_progress"] or options["verbosity"] == 0:
            return None
        return tqdm(total=total, unit="visit", desc="simulating", file=sys.stderr)

    def _visit(self, visitor: PlannedVisitor, number: int, traveller: Any) -> None:
        """One visit: a few page views, one batch posted as each page is left."""
        rng, client, kind = self.rngs[visitor.index], self.clients[visitor.index], visitor.kind
        totals = self.totals[kind.name]
        totals["visits"] += 1
        path = self.paths[0] if number == 0 or rng.random() < HOME_LANDING else self._next(
            visitor, None, rng)
        views = 1 + int(rng.poisson(kind.extra_pages))
        previous = ""
        for view in range(views):
            headers = {"referer": self.origin + previous} if previous else {}
            response = client.get(path, headers=headers)
            if response.status_code != 200:
                raise CommandError(f"GET {path} answered {response.status_code}; is {self.host!r} "
                                   "in ALLOWED_HOSTS and the page published?")
            totals["page_views"] += 1
            page = read_page(response.content.decode(response.charset or "utf-8"))
            self.page_kinds[path] = [b.kind for b in page.blocks]
            self._remember_visitor(visitor)
            if page.config is not None:  # no tracker (e.g. Do Not Track): nothing is sent
                self._track(visitor, page, previous, last=view == views - 1, traveller=traveller)
            traveller.shift(float(rng.uniform(2, 15)))  # choosing and loading the next page
            previous, path = path, self._next(visitor, path, rng)

    def _track(self, visitor: PlannedVisitor, page: TrackedPage, previous: str, *, last: bool,
               traveller: Any) -> None:
        rng, client, kind = self.rngs[visitor.index], self.clients[visitor.index], visitor.kind
        config = page.config or {}
        if config.get("consent"):  # these visitors accepted the site's consent banner
            client.cookies[config.get("consentCookie") or get_setting("CONSENT_COOKIE_NAME")] = "1"
        t0 = int(timezone.now().timestamp() * 1000)
        view = page_view_events(kind, page, t0_ms=t0, previous=previous, rng=rng)
        events = view.events
        if last and rng.random() < kind.conversion_rate:
            clicked = view.clicked[-1] if view.clicked else None
            events.append(conversion_event(page, clicked, t_ms=t0 + view.duration_ms + 500, rng=rng))
            view.duration_ms += 500
        traveller.shift(view.duration_ms / 1000 + 0.1)  # the batch leaves with the page
        for start in range(0, len(events), self.max_events):
            self._post(config.get("endpoint") or "/microadjust/collect/",
                       events[start:start + self.max_events], visitor)
        self._remember_visitor(visitor)

    def _post(self, endpoint: str, events: list[dict[str, Any]], visitor: PlannedVisitor) -> None:
        response = self.clients[visitor.index].post(
            endpoint, data=json.dumps({"v": 1, "events": events}), content_type="application/json",
            headers={"origin": self.origin})
        self.batches += 1
        if response.status_code == 204:
            self.accepted += len(events)
            self.totals[visitor.kind.name].update(e["type"] for e in events)
            return
        detail = response.content.decode(errors="replace")[:300]
        if response.status_code in SETTINGS_REFUSALS:
            reason = SETTINGS_REFUSALS[response.status_code].format(
                origin=self.origin, rate=get_setting("COLLECT_RATE"))
            raise CommandError(f"Collect answered {response.status_code}: {reason}. {detail}")
        self.refused += len(events)
        self.refusals.append(f"{response.status_code} {detail}")

    def _remember_visitor(self, visitor: PlannedVisitor) -> None:
        if visitor.index in self.visitor_ids:
            return
        cookie = self.clients[visitor.index].cookies.get(get_setting("COOKIE_NAME"))
        if cookie is not None and cookie.value:
            self.visitor_ids[visitor.index] = visitor_cookie_signer().unsign(cookie.value)

    def _next(self, visitor: PlannedVisitor, current: str | None, rng: np.random.Generator) -> str:
        """The next page, weighted by the visitor's affinity for what it holds (a page seen
        just now is less likely again)."""
        weights = np.array([page_weight(visitor.kind, self.page_kinds.get(p))
                            * (0.3 if p == current else 1.0) for p in self.paths])
        return self.paths[int(rng.choice(len(self.paths), p=weights / weights.sum()))]

    def _summary(self, visitors: list[PlannedVisitor], options: dict[str, Any]) -> None:
        counts = Counter(v.kind.name for v in visitors)
        event_types = ("pageview", "impression", "dwell", "scroll", "click", "abandon", "conversion")
        columns = ("visitors", "visits", "page_views", *event_types)
        width = max(len(t.name) for t in VISITOR_TYPES)
        lines = [f"Simulated {len(visitors)} visitors over {options['days']} days "
                 f"(seed {options['seed']}), {len(self.paths)} pages.",
                 "hidden type".ljust(width) + "".join(c.rjust(12) for c in columns)]
        for visitor_type in VISITOR_TYPES:
            totals = self.totals[visitor_type.name]
            totals["visitors"] = counts[visitor_type.name]
            lines.append(visitor_type.name.ljust(width)
                         + "".join(str(totals[c]).rjust(12) for c in columns))
        lines.append(f"Events accepted: {self.accepted} in {self.batches} batches; "
                     f"refused: {self.refused}.")
        lines.append(f"Visitors identified: {len(self.visitor_ids)}"
                     + (f"; hidden types written to {options['truth']}" if options["truth"] else ""))
        self.stdout.write("\n".join(lines))

