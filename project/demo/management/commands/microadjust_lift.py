"""``manage.py microadjust_lift``: the closed-loop lift test (``project/demo/lift.py``).

Each arm starts from an empty event table, no clusters, no engagement model and an empty
profile store, so the command **deletes tracked events, clusters, models and rollups** (rule
segments and pages stay): it refuses to run without ``--reset-data``. ``bench/lift.py`` runs it
on a fresh database of its own.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from project.demo.lift import ARM_LABELS, ARMS, METRICS, LiftRun, arm_figures, daily_ctr, lift_table

from .simulate_traffic import site_paths

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover - tqdm is in the demo extras
    tqdm = None


def run_lift(*, visitors: int, days: int, seed: int, arms: tuple[str, ...] = ARMS,
             nightly: bool = True, progress: bool = False) -> dict[str, Any]:
    """Every arm over the same population; the figures as ``bench/results/lift.json`` holds them."""
    paths = site_paths()
    if not paths:
        raise CommandError("No pages to visit: run `manage.py load_demo` first.")
    run = LiftRun(visitors=visitors, days=days, seed=seed, paths=paths, nightly=nightly)
    tallies = {}
    for arm in arms:
        total = sum(len(v.visits) for v in run.plan()[0])
        bar = tqdm(total=total, unit="visit", desc=arm, file=sys.stderr) if progress and tqdm else None
        run.progress = bar
        try:
            tallies[arm] = run.run_arm(arm)
        finally:
            if bar is not None:
                bar.close()
    figures = {arm: arm_figures(tally) for arm, tally in tallies.items()}
    last_day = {arm: arm_figures(tally, range(days - 1, days)) for arm, tally in tallies.items()}
    result: dict[str, Any] = {
        "visitors": visitors, "days": days, "seed": seed, "arms": list(arms),
        "labels": {arm: ARM_LABELS[arm] for arm in arms},
        "figures": figures, "last_day": last_day,
        "daily_ctr": daily_ctr(tallies, days),
        "nightly_job_failures": run.job_failures,
        "convergence": run.convergence,
        "blocks": {arm: {block: dict(counts) for block, counts in sorted(tally.blocks.items())}
                   for arm, tally in tallies.items()},
    }
    if "holdout" in figures and "oracle" in figures:
        result["lift"] = lift_table(figures)
        result["lift_last_day"] = lift_table(last_day)
        result["daily_share_of_oracle"] = daily_share(result["daily_ctr"])
    return result


def daily_share(daily: dict[str, list[float]]) -> dict[str, list[float | None]]:
    """Per arm and day: the share of the oracle's CTR lift over the holdout that day."""
    shares: dict[str, list[float | None]] = {}
    for arm, values in daily.items():
        row: list[float | None] = []
        for day, value in enumerate(values):
            base, oracle = daily["holdout"][day], daily["oracle"][day]
            row.append((value - base) / (oracle - base) if base and oracle != base else None)
        shares[arm] = row
    return shares


def format_table(result: dict[str, Any]) -> str:
    lines = ["| arm | visits | CTR (95% CI) | conversions / visit (95% CI) | session s (95% CI) "
             "| CTR lift | share of the oracle's lift (CTR / conv. / session) | of the any-variant oracle's |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for arm in result["arms"]:
        f = result["figures"][arm]
        lift = result.get("lift", {}).get(arm)
        shares = " / ".join(_pct(lift[m]["share_of_oracle"], sign=False) for m in METRICS) if lift else "–"
        shares_any = (" / ".join(_pct(lift[m].get("share_of_oracle_any"), sign=False) for m in METRICS)
                      if lift else "–")
        lines.append(
            f"| {result['labels'][arm]} | {f['visits']} "
            f"| {f['ctr']:.4f} ({f['ctr_ci'][0]:.4f}–{f['ctr_ci'][1]:.4f}) "
            f"| {f['conversions_per_visit']:.3f} ({f['conversions_ci'][0]:.3f}–{f['conversions_ci'][1]:.3f}) "
            f"| {f['session_seconds']:.1f} ({f['session_ci'][0]:.1f}–{f['session_ci'][1]:.1f}) "
            f"| {_pct(lift['ctr']['lift']) if lift else '–'} | {shares} | {shares_any} |")
    return "\n".join(lines)


def _pct(value: float | None, *, sign: bool = True) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value * 100:+.1f} %" if sign else f"{value * 100:.0f} %"


class Command(BaseCommand):
    help = ("Closed-loop lift test: a seeded population with hidden preferences browses the demo "
            "through each arm (holdout, rules, rules + learning, + auto-optimize, oracle) over "
            "simulated days. Deletes tracked events, clusters and models: needs --reset-data.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--visitors", type=int, default=600, help="visitors per arm (600)")
        parser.add_argument("--days", type=int, default=7, help="simulated days (7)")
        parser.add_argument("--seed", type=int, default=16, help="random seed (16)")
        parser.add_argument("--arm", action="append", choices=ARMS, dest="arms",
                            help="run only this arm (repeatable; default: all five)")
        parser.add_argument("--json", type=Path, help="also write the figures to this file")
        parser.add_argument("--reset-data", action="store_true",
                            help="allow deleting events, clusters, models and rollups (required)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["reset_data"]:
            raise CommandError("microadjust_lift deletes tracked events, clusters, engagement models "
                               "and rollups before each arm; run it on a copy of the site and pass "
                               "--reset-data (bench/lift.py uses a fresh database of its own).")
        if options["visitors"] < 1 or options["days"] < 1:
            raise CommandError("--visitors and --days must be at least 1")
        arms = tuple(options["arms"] or ARMS)
        result = run_lift(visitors=options["visitors"], days=options["days"], seed=options["seed"],
                          arms=arms, progress=not options["no_progress"] and options["verbosity"] > 0)
        if options["json"]:
            options["json"].write_text(json.dumps(result, indent=2) + "\n")
        self.stdout.write(format_table(result))
