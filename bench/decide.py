"""Cost of one experiment assignment plus the decision of a block, against django-waffle.

In one process and one run, interleaved, for many batches of fresh requests (a new visitor each):

  (a) ours: ``decide`` on a PersonalizedBlock whose variants are bound to arms B and C of a
      running three-arm experiment, gated by a waffle flag at 50 %: the holdout hash, the flag's
      rules (from the per-process copy), the exclusion-free enrollment hash, the arm, and the
      first-match decision over the block's variants;
  (b) waffle: ``flag_is_active(request, <the same flag>)`` on the same kind of request (flag
      read through waffle's cache, rules, percent draw, cookie bookkeeping on the request).

Reported: the median cost per call of (a) and (b) (each batch times 100 calls; the median over
batches), their ratio, and the hash alone. Budget: (a) at most half of (b). Timing never fails
the run; a wrong result (arms not split, no decision) raises.

    .venv/bin/python bench/decide.py [--batches 400] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings.test")

import django  # noqa: E402

django.setup()

import waffle  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import RequestFactory, override_settings  # noqa: E402
from waffle import flag_is_active  # noqa: E402
from waffle.models import Flag  # noqa: E402
from wagtail import blocks  # noqa: E402

from microadjust_cms.experiments.assignment import seed_state, unit_from_state  # noqa: E402
from microadjust_cms.experiments.models import Arm, Experiment  # noqa: E402
from microadjust_cms.experiments.runtime import experiment_cache  # noqa: E402
from microadjust_cms.rendering.blocks import PersonalizedBlock  # noqa: E402
from microadjust_cms.rendering.decisions import decide, rules_revision  # noqa: E402
from microadjust_cms.visitor.context import VisitorContext  # noqa: E402

BATCH = 100
SLUG = "bench-hero"
BUDGET_RATIO = 0.5


def setup() -> tuple[object, str]:
    call_command("migrate", run_syncdb=True, verbosity=0)
    experiment = Experiment.objects.create(name="Bench hero", slug=SLUG, status="running", goal_name="signup")
    for name, weight, control in (("control", 50, True), ("B", 30, False), ("C", 20, False)):
        Arm.objects.create(experiment=experiment, name=name, weight=weight, is_control=control)
    Flag.objects.filter(name=experiment.flag_name).update(everyone=None, percent=50)
    experiment_cache.invalidate()
    variants = [{"name": f"arm-{arm}", "condition": {"signal": "experiment_arm", "param": SLUG, "op": "eq",
                                                     "value": arm}, "content": f"<p>{arm}</p>"}
                for arm in ("B", "C")]
    stored = {"block_id": "hero", "default": "<p>control</p>", "variants": variants,
              "rules_rev": rules_revision(variants)}
    value = PersonalizedBlock(blocks.RichTextBlock()).to_python(stored)
    return value, experiment.flag_name


def visitors(factory: RequestFactory, start: int) -> list[VisitorContext]:
    out = []
    for i in range(start, start + BATCH):
        visitor = VisitorContext(factory.get("/"))
        visitor.__dict__["visitor_id"] = f"{i:032x}"
        out.append(visitor)
    return out


def time_ours(value: object, batch: list[VisitorContext]) -> tuple[float, list[str]]:
    start = time.perf_counter_ns()
    chosen = [decide(value, visitor)[0] for visitor in batch]
    return (time.perf_counter_ns() - start) / len(batch) / 1000, chosen


def time_waffle(name: str, requests: list) -> float:
    start = time.perf_counter_ns()
    for request in requests:
        flag_is_active(request, name)
    return (time.perf_counter_ns() - start) / len(requests) / 1000


def time_hash(ids: list[str]) -> float:
    state = seed_state("salt")
    start = time.perf_counter_ns()
    for visitor_id in ids:
        unit_from_state(state, visitor_id)
    return (time.perf_counter_ns() - start) / len(ids) / 1000


def run(batches: int) -> dict:
    value, flag_name = setup()
    factory = RequestFactory()
    ours, theirs, hashes, shown = [], [], [], {"default": 0, "arm-B": 0, "arm-C": 0}
    for warm in range(3):  # per-process copies, compiled program, waffle's cache
        time_ours(value, visitors(factory, warm * BATCH))
        time_waffle(flag_name, [factory.get("/") for _ in range(BATCH)])
    for n in range(batches):
        batch = visitors(factory, (n + 10) * BATCH)
        requests = [factory.get("/") for _ in range(BATCH)]
        if n % 2:  # interleaved, alternating which goes first
            theirs.append(time_waffle(flag_name, requests))
            cost, chosen = time_ours(value, batch)
        else:
            cost, chosen = time_ours(value, batch)
            theirs.append(time_waffle(flag_name, requests))
        ours.append(cost)
        hashes.append(time_hash([v.visitor_id for v in batch]))
        for variant in chosen:
            shown[variant] += 1
    total = sum(shown.values())
    # 50 % enrolled, split 50/30/20: B about 15 %, C about 10 %, everybody else the default.
    if not (0.12 < shown["arm-B"] / total < 0.18 and 0.07 < shown["arm-C"] / total < 0.13):
        raise AssertionError(f"arms not split as configured: {shown}")
    ours_median, waffle_median = statistics.median(ours), statistics.median(theirs)
    return {
        "what": "one assignment + block decision (ours) vs waffle flag_is_active, percent flag, per call",
        "calls_per_batch": BATCH, "batches": batches,
        "ours_median_us": round(ours_median, 3), "waffle_median_us": round(waffle_median, 3),
        "ratio_ours_to_waffle": round(ours_median / waffle_median, 3),
        "budget_ratio": BUDGET_RATIO, "within_budget": ours_median <= BUDGET_RATIO * waffle_median,
        "hash_only_median_us": round(statistics.median(hashes), 3),
        "shown": shown,
        "python": platform.python_version(), "django": django.get_version(), "waffle": waffle.__version__
        if hasattr(waffle, "__version__") else "", "machine": platform.machine(), "cpus": os.cpu_count(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "decide.json")
    args = parser.parse_args(argv)
    with override_settings(MICROADJUST_EXPERIMENT_HOLDOUT=0.05):  # the default: its hash is part of the cost
        result = run(args.batches)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
