"""The event pipeline under faults, with real parts: gunicorn on the Redis Streams sink, the
test's own redis-server (AOF, ``appendfsync always``) and database (behind a proxy the test can
cut), and loaders as their own processes (``manage.py microadjust_load_events``).

Each test sends batches from several visitors the whole time, breaks one part, and then checks
that every accepted event is stored exactly once and that no request got a 5xx.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import uuid

import pytest
import redis

from tests.fault_servers import FaultSite, Visitor, query

STREAM = "ma:events:{ma-ev-0}"
GROUP = "loaders"


class Traffic:
    """Visitors posting batches of five conversions with names unique to this run."""

    def __init__(self, site: FaultSite, run: str, visitors: int = 4) -> None:
        self.site, self.run = site, run
        self.stop = threading.Event()
        self.accepted: set[str] = set()
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._send, args=(n,), daemon=True)
                        for n in range(visitors)]

    def _send(self, n: int) -> None:
        visitor = Visitor(self.site, f"Mozilla/5.0 (pipeline test {n})")
        i = 0
        while not self.stop.is_set():
            t = int(time.time() * 1000)
            names = [f"{self.run}-{n}-{i}-{j}" for j in range(5)]
            status, _headers, _body = visitor.collect(
                [{"type": "conversion", "t": t, "name": name, "path": "/"} for name in names])
            with self.lock:
                self.statuses.append(status)
                if status == 204:
                    self.accepted.update(names)
            i += 1
            time.sleep(0.01)

    def start(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def stored(site: FaultSite, run: str) -> tuple[int, int]:
    """(rows, distinct names) of this run's events."""
    return query(site.database_url, "SELECT count(*), count(DISTINCT name) FROM "
                 "microadjust_cms_event WHERE name LIKE %s", f"{run}-%")[0]


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def assert_all_stored_once(site: FaultSite, traffic: Traffic, run: str) -> None:
    expected = len(traffic.accepted)
    assert expected > 0
    wait_until(lambda: stored(site, run)[0] >= expected, 120,
               f"{expected} events stored (have {stored(site, run)})")
    time.sleep(2)  # a loader still running must not write anything twice afterwards
    rows, distinct = stored(site, run)
    assert rows == distinct, f"{rows - distinct} events stored twice"
    assert distinct == expected, f"{distinct} stored, {expected} accepted"
    names = {row[0] for row in query(site.database_url, "SELECT name FROM microadjust_cms_event "
                                     "WHERE name LIKE %s", f"{run}-%")}
    assert names == traffic.accepted
    fives = [status for status in traffic.statuses if status >= 500]
    assert fives == [], f"{len(fives)} answers were 5xx: {sorted(set(fives))}"
    assert set(traffic.statuses) == {204}


def held_by(client: redis.Redis, loader: str) -> int:
    """Batches read and not acknowledged by the loader process's consumers."""
    return sum(c["pending"] for c in client.xinfo_consumers(STREAM, GROUP)
               if c["name"].decode() == loader or c["name"].decode().startswith(f"{loader}-"))


def test_a_loader_killed_mid_batch_and_replaced_loses_and_repeats_nothing(stream_site):
    client = redis.Redis.from_url(stream_site.redis.url)
    run = uuid.uuid4().hex[:10]
    traffic = Traffic(stream_site, run).start()
    killed_holding = 0
    try:
        for attempt in range(5):
            loader = stream_site.start_loader(f"doomed-{attempt}")
            wait_until(lambda: stored(stream_site, run)[0] > 0, 60, "the loader to store events")
            # Kill while the loader holds batches it read and has not acknowledged (its threads
            # are consumers "doomed-<attempt>-<n>").
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if held_by(client, f"doomed-{attempt}") > 0:
                    break
            os.killpg(loader.pid, signal.SIGKILL)
            loader.wait()
            killed_holding = held_by(client, f"doomed-{attempt}")
            if killed_holding:
                break
        assert killed_holding > 0, "the loader was never caught holding a batch"
        time.sleep(1)  # batches pile up meanwhile
        stream_site.start_loader("successor")
    finally:
        traffic.finish()
    assert_all_stored_once(stream_site, traffic, run)
    wait_until(lambda: client.xpending(STREAM, GROUP)["pending"] == 0, 30,
               "the successor to acknowledge what the killed loader held")
    claimed = re.findall(r"(\d+) claimed from stopped loaders", stream_site.loader_log("successor"))
    assert sum(map(int, claimed)) >= killed_holding  # what the killed loader held


def test_redis_restarted_mid_load_with_aof_loses_nothing(stream_site):
    run = uuid.uuid4().hex[:10]
    loader = stream_site.start_loader("loader")
    traffic = Traffic(stream_site, run).start()
    try:
        wait_until(lambda: stored(stream_site, run)[0] > 0, 60, "the loader to store events")
        # The loader paused mid-load, so acknowledged batches wait in the stream when Redis dies.
        os.killpg(loader.pid, signal.SIGSTOP)
        time.sleep(0.5)
        backlog = redis.Redis.from_url(stream_site.redis.url).xlen(STREAM)
        stream_site.redis.kill()  # SIGKILL: no clean shutdown, the AOF is what survives
        time.sleep(2)  # batches go to the database directly meanwhile
        stream_site.redis.start()  # same port and directory: the AOF is loaded
        restored = redis.Redis.from_url(stream_site.redis.url).xlen(STREAM)
        os.killpg(loader.pid, signal.SIGCONT)
        time.sleep(2)
    finally:
        os.killpg(loader.pid, signal.SIGCONT)
        traffic.finish()
    assert backlog > 0, "nothing was waiting in the stream when Redis was killed"
    assert restored >= backlog, f"the AOF brought back {restored} of {backlog} batches"
    assert_all_stored_once(stream_site, traffic, run)
    assert "Event stream unavailable" in stream_site.log(), "Redis was never seen down"


def test_the_database_unreachable_for_20_seconds_loses_nothing(stream_site):
    run = uuid.uuid4().hex[:10]
    stream_site.start_loader("loader")
    traffic = Traffic(stream_site, run).start()
    try:
        wait_until(lambda: stored(stream_site, run)[0] > 0, 60, "the loader to store events")
        stream_site.proxy.cut()
        time.sleep(20)
        backlog = redis.Redis.from_url(stream_site.redis.url).xlen(STREAM)
        stream_site.proxy.restore()
        time.sleep(1)
    finally:
        stream_site.proxy.restore()
        traffic.finish()
    assert backlog > 0, "collect kept accepting into the stream while the database was away"
    assert_all_stored_once(stream_site, traffic, run)
    assert "round failed" in stream_site.loader_log("loader")
