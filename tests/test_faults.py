"""Faults with real parts: the test's own redis-server killed under load and restarted, the
test's own database cut off, while gunicorn serves the demo with production settings
(``tests/fault_servers.py``). Never the shared Redis or PostgreSQL other tests use."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter

from tests.conftest import DESKTOP_UA, MOBILE_UA
from tests.fault_servers import Visitor, query

VARIANT_RE = re.compile(rb'data-ma-block="([^"]+)" data-ma-variant="([^"]+)"')
THREADS = 4
#: Requests of each kind (page, collect) answered before the outage, during it and after the
#: recovery, at least (counts, not seconds: a loaded CI machine serves fewer a second).
BEFORE, DOWN, AFTER = 2 * THREADS, 5 * THREADS, 2 * THREADS
PHASE_TIMEOUT = 60.0


def now_ms() -> int:
    return int(time.time() * 1000)


def variants(content: bytes) -> dict[str, str]:
    return {block.decode(): variant.decode() for block, variant in VARIANT_RE.findall(content)}


def stored_names(database_url: str, prefix: str) -> list[str]:
    rows = query(database_url, "SELECT name FROM microadjust_cms_event WHERE name LIKE %s",
                 prefix + "%")
    return [name for (name,) in rows]


def test_redis_killed_and_restarted_under_load(fault_site):
    """Pages keep rendering (defaults where the profile is needed), collect keeps storing (the
    rate limit fails open, the profile update is skipped), every accepted event is in the
    database once, and the outage is logged once an interval, not once a request."""
    run = f"fault-{uuid.uuid4().hex[:8]}-"
    phase = {"now": "before"}
    stop = threading.Event()
    lock = threading.Lock()
    statuses: Counter[tuple[str, str, int]] = Counter()
    accepted: list[str] = []
    refused: list[str] = []
    errors: list[BaseException] = []

    def browse(index: int) -> None:
        visitor = Visitor(fault_site, MOBILE_UA if index % 2 else DESKTOP_UA)
        try:
            n = 0
            while not stop.is_set():
                when = phase["now"]
                status, _, _ = visitor.get("/" if n % 2 == 0 else "/article/")
                names = [f"{run}{index}-{n}-{k}" for k in range(3)]
                events = [{"type": "conversion", "t": now_ms(), "name": name, "path": "/"} for name in names]
                collect_status, _, _ = visitor.collect(events)
                with lock:
                    statuses["page", when, status] += 1
                    statuses["collect", when, collect_status] += 1
                    (accepted if collect_status == 204 else refused).extend(names)
                n += 1
        except BaseException as exc:  # reported by the test, not lost in a thread
            errors.append(exc)

    def answered(when: str) -> int:
        with lock:
            return min(sum(c for (k, w, _), c in statuses.items() if (k, w) == (kind, when))
                       for kind in ("page", "collect"))

    def wait_for(when: str, count: int) -> None:
        deadline = time.monotonic() + PHASE_TIMEOUT
        while answered(when) < count and time.monotonic() < deadline and not errors:
            time.sleep(0.05)

    threads = [threading.Thread(target=browse, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        wait_for("before", BEFORE)
        fault_site.redis.kill()
        phase["now"] = "down"
        wait_for("down", DOWN)
        phase["now"] = "restarting"
        fault_site.redis.start()
        phase["now"] = "after"
        wait_for("after", AFTER)
    finally:
        stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors

    print(f"Redis fault: {len(accepted)} events accepted; answers {dict(sorted(statuses.items()))}")
    server_errors = {key: count for key, count in statuses.items() if key[2] >= 500}
    assert server_errors == {}, f"5xx answers: {server_errors}\n{fault_site.log()[-4000:]}"
    for when, count in (("before", BEFORE), ("down", DOWN), ("after", AFTER)):
        assert answered(when) >= count, f"too few requests while Redis was {when}: {statuses}"
    # Every page rendered and every batch was stored, through the outage.
    assert {status for (kind, _, status) in statuses if kind == "page"} == {200}, statuses
    assert refused == [], statuses
    names = stored_names(fault_site.database_url, run)
    assert len(names) == len(accepted) and set(names) == set(accepted)

    log = fault_site.log()
    # Logged, with the kind, at most once per interval per process (2 workers), not per request.
    for kind in ("rate_limit", "profile_store"):
        reports = log.count(f"[{kind}")
        assert 1 <= reports <= 2 * 2, (kind, reports, statuses, log[-3000:])

    # Redis is back: the profile counts views again (a repeat view shows fresh content).
    visitor = Visitor(fault_site, DESKTOP_UA)
    assert variants(visitor.get("/")[2])["fresh-content"] == "default"
    visitor.get("/article/")
    assert variants(visitor.get("/")[2])["fresh-content"] == "repeat-view"


def test_database_unreachable_collect_and_fragment_answer_503(fault_site):
    """The database cut off: collect and the fragment API answer 503 with Retry-After (the
    tracker keeps the batch), nothing is half stored, and both recover when it is back."""
    run = f"dbdown-{uuid.uuid4().hex[:8]}-"
    visitor = Visitor(fault_site, MOBILE_UA)
    status, _, content = visitor.get("/")
    assert status == 200
    (home_id,), = query(fault_site.database_url,
                        "SELECT root_page_id FROM wagtailcore_site WHERE is_default_site")
    fragment = f"/microadjust/api/fragment/?page={home_id}&block=mobile-banner"
    assert visitor.get(fragment)[0] == 200

    fault_site.proxy.cut()
    statuses: Counter[tuple[str, int]] = Counter()
    refused = []
    try:
        deadline = time.monotonic() + 3.0
        n = 0
        while time.monotonic() < deadline:
            names = [f"{run}down-{n}-{k}" for k in range(3)]
            status, headers, body = visitor.collect(
                [{"type": "conversion", "t": now_ms(), "name": name} for name in names])
            statuses["collect", status] += 1
            if status == 503:
                assert headers.get("retry-after") and b'"unavailable"' in body
                refused.extend(names)
            status, headers, body = visitor.get(fragment)
            statuses["fragment", status] += 1
            if status == 503:
                assert headers.get("retry-after") and b'"unavailable"' in body
            n += 1
    finally:
        fault_site.proxy.restore()
    print(f"Database fault: answers {dict(statuses)}")
    assert set(statuses) == {("collect", 503), ("fragment", 503)}, statuses

    # Back: the tracker's retry of a refused batch is stored, once.
    retry = refused[:3]
    deadline = time.monotonic() + 20
    while True:
        status, _, _ = visitor.collect([{"type": "conversion", "t": now_ms(), "name": n} for n in retry])
        if status == 204 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 204, fault_site.log()[-3000:]
    assert visitor.get(fragment)[0] == 200
    assert sorted(stored_names(fault_site.database_url, run)) == sorted(retry)
    assert "[database" in fault_site.log()
