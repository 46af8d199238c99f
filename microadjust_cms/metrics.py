"""Counters for Prometheus, kept cheaply on the request path and handed to prometheus-client in
bulk (``monitoring`` serves them at ``/metrics``).

A personalized page renders many blocks and collect answers thousands of batches a second, so
the request path only adds to a plain dict (``count_*``); once a second a thread of the process
(and the scrape, in the process that answers it) hands the sums to prometheus-client's counters,
which in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, for gunicorn's workers) write them to
shared files. Label sets are bounded: decisions name at most ``METRICS_MAX_BLOCK_SERIES`` (block,
variant) pairs a process, the rest count as block "other". With metrics off (no
``METRICS_TOKEN``), nothing is counted at all.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable

from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram

from . import faults
from .conf import get_setting

logger = logging.getLogger("microadjust_cms.metrics")
COLLECT = PromCounter("microadjust_collect_batches", "Batches posted to the collect endpoint, by answer",
                      ["status", "reason"])
DECISIONS = PromCounter("microadjust_decisions", "Personalized blocks rendered, by block, variant and reason",
                        ["block", "variant", "reason"])
FAULTS = PromCounter("microadjust_faults", "Failures the request path survived (faults.py), by kind",
                     ["kind"])
PAGE_SECONDS = Histogram("microadjust_page_seconds",
                         "Time to answer a request through the visitor middleware, by whether it "
                         "personalized anything (compare the two for the render overhead)",
                         ["personalized"],
                         buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
_PERSONALIZED = PAGE_SECONDS.labels("yes")
_PLAIN = PAGE_SECONDS.labels("no")

_lock = threading.Lock()
_pending: Counter[tuple] = Counter()
_block_series: set[tuple[str, str]] = set()
_faults_flushed: Counter[str] = Counter()
_last_flush = 0.0


_flusher_pid = 0


def enabled() -> bool:
    """Metrics are on when ``METRICS_TOKEN`` is set; off, the request path counts nothing."""
    return bool(get_setting("METRICS_TOKEN"))


def _ensure_flusher() -> None:
    """One daemon thread a process (a forked worker starts its own) flushes every second."""
    global _flusher_pid
    pid = os.getpid()
    if _flusher_pid == pid:
        return
    with _lock:
        if _flusher_pid == pid:
            return
        _flusher_pid = pid
    threading.Thread(target=_flush_every_second, name="microadjust-metrics", daemon=True).start()


def _flush_every_second() -> None:
    while True:
        time.sleep(1.0)
        try:
            flush(force=True)
        except Exception:  # never let the thread die: the next second tries again
            logger.exception("Could not hand the counts to prometheus-client")


def count_collect(status: int, reason: str) -> None:
    _ensure_flusher()
    with _lock:
        _pending[("collect", str(status), reason)] += 1


#: Rendered pages waiting to be counted: (seconds, the page's adjustments). ``deque.append`` and
#: ``popleft`` are atomic, so a page costs the request one append and none is lost; the flusher
#: does the counting.
_pages: deque[tuple[float, list]] = deque()


def count_page(seconds: float, adjustments: list[tuple[str, str, str]]) -> None:
    """A Wagtail page answered in ``seconds``, with its adjustments ((block id, variant, reason)
    each; none for a plain page). Read later: the list must not change after the response."""
    _ensure_flusher()
    _pages.append((seconds, adjustments))


def count_decisions(adjustments: Iterable[tuple[str, str, str]]) -> None:
    """Adjustments made outside a page view (the fragment API, say)."""
    with _lock:
        _count_decisions(adjustments)


def _count_decisions(adjustments: Iterable[tuple[str, str, str]]) -> None:
    limit = get_setting("METRICS_MAX_BLOCK_SERIES")
    for block, variant, reason in adjustments:
        pair = (block, variant)
        if pair not in _block_series:
            if len(_block_series) >= limit:
                pair = ("other", "other")
            else:
                _block_series.add(pair)
        _pending[("decision", *pair, reason)] += 1


def flush(*, force: bool = False) -> None:
    """Hand the sums to prometheus-client (at most once a second unless ``force``)."""
    global _last_flush
    now = time.monotonic()
    if not force and now - _last_flush < 1.0:
        return
    with _lock:
        _last_flush = now
        while _pages:
            seconds, adjustments = _pages.popleft()
            (_PERSONALIZED if adjustments else _PLAIN).observe(seconds)
            _count_decisions(adjustments)
        pending = dict(_pending)
        _pending.clear()
        fault_totals = dict(faults.counters)
    for key, amount in pending.items():
        if key[0] == "collect":
            COLLECT.labels(key[1], key[2]).inc(amount)
        else:
            DECISIONS.labels(key[1], key[2], key[3]).inc(amount)
    for kind, total in fault_totals.items():
        if total < _faults_flushed[kind]:  # the counts were reset (tests)
            _faults_flushed[kind] = 0
        new = total - _faults_flushed[kind]
        if new > 0:
            FAULTS.labels(kind).inc(new)
            _faults_flushed[kind] = total
