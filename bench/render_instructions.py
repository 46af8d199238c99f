"""Render budget in CPU instructions: the same pages as ``render.py``, counted by callgrind.

Wall time on a shared 2-core machine moves by a few percent from run to run; instruction counts
do not, so this is the ruler for small render-path changes. Each case runs in its own process
under ``valgrind --tool=callgrind`` with collection switched on around each of N requests and
off while the garbage collector runs between them, as ``render.py`` times requests but not its
``gc.collect()`` between them (same setup and warm-up). A third run switches collection on and
off with no request in between; its count is taken off both cases. The ratio is a/b of
instructions per request.

    .venv/bin/python bench/render_instructions.py [--requests 40] [--out PATH]

Needs valgrind (Debian package ``valgrind``). Writes bench/results/render_instructions.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: a/b, instructions per request (DESIGN.md: a personalized page within 5% of a plain one).
BUDGET = 1.05


def child(case: str, requests: int) -> None:
    """Runs inside valgrind: set up, warm up, then count ``requests`` requests of ``case``."""
    sys.path.insert(0, str(HERE))
    import render  # noqa: PLC0415  (sets up Django)
    from django.test import Client

    pages, _expected = render.setup_site()
    urls = {"a": pages["personalized"].url + render.QUERY, "b": pages["plain"].url + render.QUERY}
    client = Client(HTTP_USER_AGENT=render.DESKTOP_CHROME)
    for _ in range(20):
        for url in urls.values():
            assert client.get(url).status_code == 200
    gc.collect()
    gc.freeze()
    control = ["callgrind_control", "-i"]
    pid = str(os.getpid())
    # As in render.py: the collector runs between requests, outside what is counted.
    for _ in range(requests):
        subprocess.run([*control, "on", pid], check=True, capture_output=True)
        if case != "idle":  # "idle" counts what switching collection on and off costs
            client.get(urls[case])
        subprocess.run([*control, "off", pid], check=True, capture_output=True)
        gc.collect()


def count(case: str, requests: int, workdir: str) -> int:
    out = os.path.join(workdir, f"callgrind.{case}.out")
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         sys.executable, __file__, "--child", case, "--requests", str(requests)],
        capture_output=True, text=True, cwd=ROOT, timeout=1800)
    match = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or not match:
        sys.exit(f"callgrind run for ({case}) failed:\n{result.stderr[-3000:]}")
    return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "render_instructions.json")
    parser.add_argument("--child", choices=["a", "b", "idle"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.requests)
        return 0
    if not shutil.which("valgrind"):
        sys.exit("valgrind is needed: apt-get install valgrind")
    with tempfile.TemporaryDirectory() as workdir, ThreadPoolExecutor(2) as pool:
        # Both cases at once (one valgrind process each, two cores); counts don't interfere.
        futures = {case: pool.submit(count, case, args.requests, workdir)
                   for case in ("a", "b", "idle")}
        totals = {case: future.result() for case, future in futures.items()}
    idle = totals.pop("idle")
    per_request = {case: (total - idle) / args.requests for case, total in totals.items()}
    ratio = per_request["a"] / per_request["b"]
    result = {
        "benchmark": "render_instructions",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "requests_per_case": args.requests,
        "instructions_per_request": {k: round(v) for k, v in per_request.items()},
        "toggle_overhead_per_request": round(idle / args.requests),
        "a_over_b": round(ratio, 4),
        "budget": "a/b <= 1.05",
        "pass": ratio <= BUDGET,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| case | instructions per request |\n| --- | ---: |")
    for case, label in (("a", "(a) 20 personalized blocks"), ("b", "(b) 20 plain blocks")):
        print(f"| {label} | {per_request[case] / 1e6:.3f} M |")
    print(f"\na/b = {ratio:.4f} (budget {BUDGET}): {'PASS' if ratio <= BUDGET else 'FAIL'}")
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
