"""Failures the request path survives: counted per kind, logged at most once an interval.

An outage of Redis or the database would otherwise log a warning with a traceback for every
request, thousands a second, burying the first one that says what broke. Each kind logs its
first failure with the traceback, then at most once per ``FAULT_LOG_INTERVAL`` seconds with how
many happened since. ``counters`` holds the totals of this process (for metrics and tests);
unhandled exceptions (500s) are counted too, as ``unhandled:<exception class>``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter
from typing import Any

from django.core.signals import got_request_exception
from django.dispatch import receiver

from .conf import get_setting

logger = logging.getLogger("microadjust_cms.faults")

#: Failures of this process by kind, e.g. ``rate_limit``, ``profile_store``, ``database``.
counters: Counter[str] = Counter()
_last_logged: dict[str, float] = {}
_since_logged: Counter[str] = Counter()
_lock = threading.Lock()


def record(kind: str, message: str, *args: Any, exc_info: bool = True,
           log: logging.Logger | None = None) -> None:
    """Count one failure of ``kind``; log it unless this kind was logged in the last interval."""
    now = time.monotonic()
    with _lock:
        counters[kind] += 1
        last = _last_logged.get(kind)
        if last is not None and now - last < get_setting("FAULT_LOG_INTERVAL"):
            _since_logged[kind] += 1
            return
        _last_logged[kind] = now
        skipped = _since_logged.pop(kind, 0)
    suffix = f" [{kind}: {skipped} more since the last report]" if skipped else f" [{kind}]"
    (log or logger).warning(message + suffix, *args, exc_info=exc_info)


def reset() -> None:
    """Forget counts and log times (tests)."""
    with _lock:
        counters.clear()
        _last_logged.clear()
        _since_logged.clear()


@receiver(got_request_exception, dispatch_uid="microadjust-count-unhandled")
def _count_unhandled(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
    """Django logs the traceback (``django.request``); this only counts it, by class."""
    exc_type = sys.exc_info()[0]
    with _lock:
        counters[f"unhandled:{exc_type.__name__ if exc_type else 'unknown'}"] += 1
