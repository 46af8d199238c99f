"""Editor reports over 10,000,000 events: answered from the rollups, never from the events.

In one run, on PostgreSQL (a database ``microadjust_rollup_bench``, created and dropped here):
``--events`` events over 30 days (40 pages, 5 personalized blocks each with 3 variants, 3
devices, 200,000 visitors; impressions, clicks, dwells, abandons, scrolls, page views and
conversions) are inserted with one ``INSERT ... SELECT`` over ``generate_series``; the rollups
are built (``rollups.rebuild`` over the 30 days) and refreshed once as the scheduled job does;
then each report is asked ``--repeat`` times (median, p90): the block report over 30 days, over
7 days for one device, for one page, for one segment, for one device and cluster over 7 days,
a page's scroll drop-off and a page's last 48 hours. As the baseline in the same
run, the block report's figures computed from the event table itself (the grouped query a
rollup is built from, over the 30 days), ``--baseline-repeat`` times.

Budget (issue 15): a report over 10,000,000 events answers in < 300 ms. Writes
``bench/results/rollups.json``.

    .venv/bin/python bench/rollups.py [--events 10000000] [--repeat 20] [--baseline-repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATABASE = "microadjust_rollup_bench"
SERVER = "postgres://postgres@127.0.0.1:5432/"
BUDGET_MS = 300
DAYS = 30
CLUSTERS = 4
RULE_SEGMENTS = ("loyal", "campaign")

#: One statement. Events come in sessions of 20 (s = i / 20): a session is one visitor (among
#: 200,000) on one page (among 40) on one device, within a minute; its events are 7 page views,
#: 5 impressions, 1 click, 3 dwells, 2 scrolls, 1 abandon and 1 conversion, on the page's 5
#: blocks, each shown in the session's variant (among 3). Sessions spread over the 30 days.
#: Every event is stamped with its visitor's segments (``SEGMENTS``): one of 4 clusters, and
#: the rule segments "loyal" (a third of visitors) and "campaign" (a fifth).
GENERATE = """
INSERT INTO microadjust_cms_event
  (visitor_id, type, occurred_at, received_at, page_id, path, previous_path, block_id, variant,
   value, name, content_type, tags, device, position, segments)
SELECT md5(((i / 20) %% 200000)::text),
       t.kind,
       %(end)s::timestamptz - ((((i / 20) * 7919) %% (%(days)s * 86400 - 60) + 60 - i %% 20)
                               || ' seconds')::interval,
       %(end)s::timestamptz,
       1 + (i / 20) %% 40, '/page/' || (1 + (i / 20) %% 40), '',
       CASE WHEN t.kind IN ('impression', 'click', 'dwell', 'abandon') THEN 'block-' || (i %% 5) ELSE '' END,
       CASE WHEN t.kind IN ('impression', 'click', 'dwell', 'abandon') THEN 'v' || ((i / 20) %% 3) ELSE '' END,
       CASE WHEN t.kind = 'dwell' THEN (i * 104729) %% 180000
            WHEN t.kind = 'scroll' THEN (ARRAY[25, 50, 75, 90, 100])[1 + (i / 20) %% 5]
            WHEN t.kind = 'abandon' THEN 800 END,
       CASE WHEN t.kind = 'conversion' THEN 'signup' ELSE '' END,
       '', '',
       (ARRAY['desktop', 'mobile', 'tablet'])[1 + (i / 140) %% 3],
       CASE WHEN t.kind IN ('impression', 'click', 'dwell', 'abandon') THEN i %% 5 END,
       CASE WHEN %(stamped)s THEN 'cluster-' || (1 + ((i / 20) %% 200000) %% 4)
         || CASE WHEN ((i / 20) %% 200000) %% 3 = 0 THEN ' loyal' ELSE '' END
         || CASE WHEN ((i / 20) %% 200000) %% 5 = 0 THEN ' campaign' ELSE '' END ELSE '' END
FROM generate_series(1::bigint, %(events)s::bigint) AS i
CROSS JOIN LATERAL (SELECT (ARRAY['pageview', 'pageview', 'pageview', 'pageview', 'pageview',
    'pageview', 'pageview', 'impression', 'impression', 'impression', 'impression', 'impression',
    'click', 'dwell', 'dwell', 'dwell', 'scroll', 'scroll', 'abandon', 'conversion'])[1 + i %% 20]
    AS kind) AS t
"""


def admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(SERVER + "postgres", autocommit=True) as conn:
        conn.execute(sql)


def timed(function, repeat: int, keep: list | None = None) -> dict:
    """Median and p90 of ``repeat`` calls; the last result appended to ``keep``."""
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    ordered = sorted(times)
    if keep is not None:
        keep.append(result)
    return {"median_ms": round(statistics.median(times) * 1000, 2),
            "p90_ms": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))] * 1000, 2),
            "runs": repeat, "result_rows": len(result) if isinstance(result, list) else 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--baseline-repeat", type=int, default=3)
    parser.add_argument("--no-segments", action="store_true",
                        help="stamp no segment on the events (what segment rows cost, by difference)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "rollups.json")
    args = parser.parse_args(argv)

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings.test",
           "DATABASE_URL": SERVER + DATABASE}
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    admin(f"CREATE DATABASE {DATABASE}")
    try:
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"],
                       env=env, check=True, cwd=ROOT)
        import django

        django.setup()
        from django.db import connection
        from django.utils import timezone

        from microadjust_cms.analytics import figures, rollups
        from microadjust_cms.analytics.models import BlockRollup, PageRollup
        from microadjust_cms.learning.models import Cluster
        from microadjust_cms.segments.models import Segment

        for number in range(1, CLUSTERS + 1):
            Cluster.objects.create(number=number, slug=f"cluster-{number}", name=f"Cluster {number}")
        for slug in RULE_SEGMENTS:
            Segment.objects.create(name=slug.title(), slug=slug, condition={
                "signal": "device", "op": "eq", "value": "mobile"})

        end = timezone.now().replace(microsecond=0)
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(GENERATE, {"end": end, "days": DAYS, "events": args.events,
                                      "stamped": not args.no_segments})
            cursor.execute("ANALYZE microadjust_cms_event")
        generate_seconds = time.perf_counter() - started
        print(f"{args.events:,} events inserted in {generate_seconds:.1f} s")

        first = end - timedelta(days=DAYS)
        started = time.perf_counter()
        built = rollups.rebuild(rollups._local_midnight(first), rollups._local_midnight(end) + rollups.DAY,
                                now=end)
        build_seconds = time.perf_counter() - started
        print(f"rollups built in {build_seconds:.1f} s: {built.block_rows:,} block rows, "
              f"{built.page_rows:,} page rows")
        from microadjust_cms.analytics.models import RollupState

        RollupState.objects.update_or_create(pk=1, defaults={"last_run_at": end, "dirty_from": None})
        started = time.perf_counter()
        refreshed = rollups.refresh(now=end + timedelta(minutes=10))  # a scheduled one
        refresh_seconds = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE microadjust_cms_blockrollup")
            cursor.execute("ANALYZE microadjust_cms_pagerollup")

        last = timezone.localdate(end)
        month, week = last - timedelta(days=DAYS - 1), last - timedelta(days=6)
        reports = {
            "blocks, 30 days": lambda: figures.block_figures(month, last),
            "blocks, 7 days, mobile": lambda: figures.block_figures(week, last, device="mobile"),
            "blocks of one page, 30 days": lambda: figures.block_figures(month, last, page_id=5),
            "blocks, 30 days, one segment": lambda: figures.block_figures(month, last, segment="loyal"),
            "blocks, 7 days, mobile, one cluster": lambda: figures.block_figures(
                week, last, device="mobile", segment="cluster-2"),
            "a page's last 48 hours": lambda: figures.page_hours(5, now=end),
            "page drop-off, 30 days": lambda: figures.page_dropoff(5, month, last),
        }
        results = {name: timed(report, args.repeat) for name, report in reports.items()}
        first_day, after = figures.day_range(month, last)
        raw_rows: list = []
        baseline = timed(lambda: rollups._block_rows(first_day, after, "day"), args.baseline_repeat, raw_rows)
        from django.db.models import Sum

        check = {(r["page_id"], r["block_id"], r["variant"]): r["n"] for r in
                 BlockRollup.objects.filter(period="day", start__gte=first_day, start__lt=after, device="all",
                                            segment="")
                 .values("page_id", "block_id", "variant").annotate(n=Sum("impressions"))}
        raw: dict = {}
        for row in raw_rows[0]:  # per device: summed here, as the rows for all devices hold
            key = (row["page_id"], row["block_id"], row["variant"])
            raw[key] = raw.get(key, 0) + row["impressions"]
        hidden = sum(r.hidden for r in figures.block_figures(month, last))
        assert check == raw, "the rollups disagree with the event table"
        counts = {"events": args.events, "block_rollup_rows": BlockRollup.objects.count(),
                  "variants_hidden_under_min_visitors": hidden,
                  "page_rollup_rows": PageRollup.objects.count()}
        connection.close()
    finally:
        admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")

    worst = max(r["median_ms"] for r in results.values())
    result = {
        "benchmark": "rollups",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "setup": {"database": "PostgreSQL", "days": DAYS, "pages": 40, "blocks_per_page": 5,
                  "variants": 3, "devices": 3, "visitors": 200_000, "clusters": CLUSTERS,
                  "rule_segments": len(RULE_SEGMENTS), "python": platform.python_version(),
                  "cpus": os.cpu_count()},
        "segments_stamped": not args.no_segments,
        "counts": counts,
        "generate_seconds": round(generate_seconds, 1),
        "build_seconds": round(build_seconds, 1),
        "scheduled_refresh": {"seconds": round(refresh_seconds, 2), "days": refreshed.days,
                              "hours": refreshed.hours},
        "reports": results,
        "baseline_block_report_from_events": baseline,
        "ratio_baseline_over_rollups": round(baseline["median_ms"] / results["blocks, 30 days"]["median_ms"], 1),
        "budget": {"limit": f"every report < {BUDGET_MS} ms (median)", "worst_median_ms": worst,
                   "pass": worst < BUDGET_MS},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| report | median ms | p90 ms | rows |")
    print("| --- | ---: | ---: | ---: |")
    for name, r in results.items():
        print(f"| {name} | {r['median_ms']} | {r['p90_ms']} | {r['result_rows']} |")
    print(f"| baseline: block figures from the events, 30 days | {baseline['median_ms']} | "
          f"{baseline['p90_ms']} | {baseline['result_rows']} |")
    print(f"\nrollups: {counts['block_rollup_rows']:,} block rows, {counts['page_rollup_rows']:,} page "
          f"rows; built in {build_seconds:.1f} s; a scheduled refresh ({refreshed.days} days) "
          f"{refresh_seconds:.2f} s")
    print(f"budget: every report < {BUDGET_MS} ms: worst median {worst} ms "
          f"{'PASS' if worst < BUDGET_MS else 'FAIL'}")
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
