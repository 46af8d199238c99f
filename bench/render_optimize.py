"""Render cost of auto-optimize: ``render.py``'s pages, plus (o): page (a) with Auto-optimize
switched on in all 20 personalized blocks.

Fifteen blocks of (o) have two to four candidates for the benchmark visitor (the matching
variants and the default; in the other five only the default matches) and counters in the
profile store that keep them exploring (no candidate dominates yet: the Thompson draws run).
Same visitor, same interleaved rounds and garbage collection between requests as
``render.py``; the counters come with the profile (the page is rendered once before timing, so
its blocks are known to the process).

Reports median(o) / median(a) (what switching auto-optimize on costs) and median(o) / median(b)
against the plain page (the render budget, <= 1.05), with the SQL queries of each.

    .venv/bin/python bench/render_optimize.py [--requests 600] [--out PATH]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import render  # noqa: E402  (sets up Django)
from django.db import connection  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from wagtail.models import Site  # noqa: E402

from microadjust_cms.behaviour import BehaviourUpdate  # noqa: E402
from microadjust_cms.rendering.block_ids import as_saved  # noqa: E402
from microadjust_cms.visitor.stores import get_profile_store  # noqa: E402
from project.demo.models import HomePage  # noqa: E402

OPTIMIZE = {"enabled": True, "goal": "click", "context": "cluster", "min_share": 0.05}


def optimized_page() -> HomePage:
    now_or_next, others = render.time_buckets()
    personalized, _plain, _expected = render.build_bodies(now_or_next, others)
    for block in personalized:
        block["id"] = str(uuid.uuid4())
        block["value"] = {**block["value"], "block_id": block["value"]["block_id"] + "-o",
                          "optimize": dict(OPTIMIZE)}
    root = Site.objects.get(is_default_site=True).root_page
    page = HomePage(title="Bench optimized", slug="optimized",
                    body=as_saved(HomePage.body.field, personalized))
    root.add_child(instance=page)
    page.save_revision().publish()
    store = get_profile_store()
    for i in range(render.N_BLOCKS):  # 40 to 60 trials a candidate, rates close: still exploring
        counters = {}
        for j, name in enumerate((*render.NAMES, "default")):
            counters[f"n|none|{name}"] = 40 + 5 * j
            counters[f"s|none|{name}"] = 8 + j
        store.record_events("f" * 32, BehaviourUpdate(counters={f"bench-{i:02d}-o": counters}), now=time.time())
    return HomePage.objects.get(pk=page.pk)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "render_optimize.json")
    args = parser.parse_args(argv)
    with override_settings(MICROADJUST_EXPERIMENT_HOLDOUT=0.0):
        pages, _expected = render.setup_site()
        optimized = optimized_page()
        urls = {"a": pages["personalized"].url + render.QUERY, "b": pages["plain"].url + render.QUERY,
                "o": optimized.url + render.QUERY}
        client = Client(HTTP_USER_AGENT=render.DESKTOP_CHROME)
        for _ in range(2):
            client.get(urls["a"])
        queries, reasons = {}, {}
        for key, url in urls.items():
            with CaptureQueriesContext(connection) as captured:
                response = client.get(url)
            assert response.status_code == 200
            queries[key] = len(captured.captured_queries)
            reasons[key] = sorted({a.reason for a in response.wsgi_request.visitor.adjustments})
        # Blocks where only the default matches have nothing to choose ("default").
        assert "match" not in reasons["o"] and "optimize" in reasons["o"], reasons["o"]
        assert reasons["o"] != ["optimize-stop"], "the counters should keep the blocks exploring"
        for _ in range(args.warmup):
            for url in urls.values():
                client.get(url)
        times = {key: [] for key in urls}
        rng = random.Random(render.SEED)
        gc.collect()
        gc.freeze()
        for _ in range(args.requests):
            order = list(urls)
            rng.shuffle(order)
            for key in order:
                start = time.perf_counter()
                client.get(urls[key])
                times[key].append(time.perf_counter() - start)
                gc.collect()
        gc.unfreeze()
    med = {key: statistics.median(values) * 1000 for key, values in times.items()}
    result = {
        "benchmark": "render_optimize",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "requests_per_case": args.requests,
        "median_ms": {key: round(value, 4) for key, value in med.items()},
        "queries": queries,
        "optimized_reasons": reasons["o"],
        "o_over_a": round(med["o"] / med["a"], 4),
        "o_over_b": round(med["o"] / med["b"], 4),
        "a_over_b": round(med["a"] / med["b"], 4),
        "per_block_cost_us": round((med["o"] - med["a"]) * 1000 / render.N_BLOCKS, 2),
        "extra_queries": queries["o"] - queries["b"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| case | page | median ms | SQL queries |\n| --- | --- | ---: | ---: |")
    for key, label in (("a", "20 personalized blocks (rules)"), ("o", "the same, auto-optimized"),
                       ("b", "20 plain blocks")):
        print(f"| ({key}) | {label} | {med[key]:.3f} | {queries[key]} |")
    print(f"\no/a = {result['o_over_a']:.3f} (auto-optimize's cost: {result['per_block_cost_us']} us a block); "
          f"o/b = {result['o_over_b']:.3f}, a/b = {result['a_over_b']:.3f} (budget 1.05); "
          f"extra SQL {result['extra_queries']}")
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
