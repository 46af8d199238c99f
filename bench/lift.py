"""Lift: does the system raise engagement, and how much of an oracle's lift does it reach?

Runs ``manage.py microadjust_lift`` (``project/demo/lift.py``) on a fresh in-memory database
with the demo content: the same seeded population with hidden preferences browses the real site
through each arm (global holdout, editor rules, rules + clusters + ranking, + auto-optimize, an
oracle that knows each visitor's hidden type) over simulated days, nightly jobs included.

Budgets (issue 16): the full system reaches >= 80% of the oracle's CTR lift over the holdout
within the simulated days (7); each auto-optimized block's favourite per cluster is the variant
its visitors like best (convergence). Timing never fails the run.

    .venv/bin/python bench/lift.py [--visitors 1000] [--days 7] [--seed 16] [--out PATH]

Writes bench/results/lift.json and bench/results/lift.png (CTR lift over the holdout by day).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

from django.core.management import call_command  # noqa: E402

from project.demo.management.commands.microadjust_lift import format_table, run_lift  # noqa: E402

BUDGET_SHARE = 0.8


def plot(result: dict, path: Path) -> None:
    """CTR lift over the holdout per simulated day, one line per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    daily = result["daily_ctr"]
    days = list(range(1, result["days"] + 1))
    figure, axis = plt.subplots(figsize=(8, 4.5), dpi=120)
    for arm in result["arms"]:
        if arm == "holdout":
            continue
        lifts = [(value / base - 1) * 100 if base else float("nan")
                 for value, base in zip(daily[arm], daily["holdout"], strict=True)]
        style = "--" if arm.startswith("oracle") else "-"
        axis.plot(days, lifts, style, marker="o", label=result["labels"][arm])
    axis.axhline(0, color="grey", linewidth=0.8)
    axis.set_xlabel("simulated day")
    axis.set_ylabel("CTR lift over the global holdout (%)")
    axis.set_title(f"Lift by day ({result['visitors']} visitors, seed {result['seed']})")
    axis.legend(loc="best", fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "lift.json")
    args = parser.parse_args(argv)
    call_command("migrate", run_syncdb=True, verbosity=0)
    with open(os.devnull, "w") as sink:
        call_command("load_demo", stdout=sink)
    started = time.perf_counter()
    result = run_lift(visitors=args.visitors, days=args.days, seed=args.seed, progress=True)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["timestamp"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["versions"] = {"python": platform.python_version(), "django": django.get_version()}
    shares = result["daily_share_of_oracle"]["full"]
    reached = next((day + 1 for day, share in enumerate(shares) if share is not None and share >= BUDGET_SHARE), None)
    converged = [row for row in result["convergence"] if row["trials"] >= 50]
    result["budgets"] = {
        "share_of_oracle_lift": {
            "limit": f"full system >= {BUDGET_SHARE:.0%} of the oracle's CTR lift within {args.days} days",
            "overall": result["lift"]["full"]["ctr"]["share_of_oracle"],
            "first_day_reached": reached, "pass": reached is not None},
        "convergence": {
            "limit": "each optimized block's favourite per context (>= 50 trials) is the best variant "
                     "for its visitors' hidden types",
            "contexts": len(converged), "converged": sum(row["converged"] for row in converged),
            "pass": bool(converged) and all(row["converged"] for row in converged)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    png = args.out.with_suffix(".png")
    plot(result, png)
    print(format_table(result))
    print("\nShare of the oracle's CTR lift, by day (full system): "
          + ", ".join("–" if s is None else f"{s:.0%}" for s in shares))
    print(f"Budget >= {BUDGET_SHARE:.0%} of the oracle lift within {args.days} days: "
          f"{'PASS (day ' + str(reached) + ')' if reached else 'FAIL'}")
    print("Convergence (auto-optimized blocks, contexts with >= 50 trials):")
    for row in converged:
        print(f"  {row['block']} {row['context']}: {row['trials']} trials, favours {row['leader']}, "
              f"best for its visitors {row['best_by_hidden_types']} "
              f"{'OK' if row['converged'] else 'NOT CONVERGED'} {row['members']}")
    print(f"Wrote {args.out} and {png} in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
