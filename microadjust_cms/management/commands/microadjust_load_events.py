"""``manage.py microadjust_load_events``: the event loader as a long-running process.

Run one or more under a supervisor (systemd, Kubernetes) next to the web processes when
``MICROADJUST_EVENT_SINK`` is the Redis Streams sink. Each prints a progress line every
``--progress`` seconds; SIGTERM or SIGINT stops it after the round in flight (whose batches
are committed and acknowledged, or left for the next loader).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...conf import get_setting
from ...tracking.loader import LoadStats, drain_in_threads, in_threads, make_loaders
from ...tracking.sinks.redis_stream import redis_connection


class Command(BaseCommand):
    help = "Load events from the Redis event streams into the database (runs until stopped)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true",
                            help="drain what is waiting, then exit")
        parser.add_argument("--status", action="store_true",
                            help="print the backlog as Prometheus gauges and exit")
        parser.add_argument("--consumer", help="consumer name (default: host and process id)")
        parser.add_argument("--shard", type=int, action="append", dest="shards",
                            help="load this shard only (repeat for several; default: all)")
        parser.add_argument("--progress", type=float, default=10.0,
                            help="seconds between progress lines (default 10)")
        parser.add_argument("--read-count", type=int, help="batches a read takes")
        parser.add_argument("--threads", type=int,
                            help="loaders in this process (default EVENT_LOADER_THREADS)")
        parser.add_argument("--claim-idle", type=float,
                            help="seconds before a stopped loader's batches are claimed")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["status"]:
            from ...tracking.pipeline_status import pipeline_status, prometheus_text

            self.stdout.write(prometheus_text(pipeline_status(dead_letters=0)), ending="")
            return
        try:
            redis_connection().ping()
        except Exception as exc:
            raise CommandError(f"Redis cannot be reached ({exc}); the loader reads the event "
                               "streams of the Redis Streams sink") from exc
        threads = options["threads"] or get_setting("EVENT_LOADER_THREADS")
        loader_options = {"shards": options["shards"], "read_count": options["read_count"],
                          "claim_idle_seconds": options["claim_idle"]}
        if options["once"]:
            stats = drain_in_threads(threads, consumer=options["consumer"], **loader_options)
            self.stdout.write(stats.line())
            return
        loaders = make_loaders(threads, options["consumer"], **loader_options)
        loader = loaders[0]
        stopping = {"now": False}

        def stop(*_args: Any) -> None:
            stopping["now"] = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"loaders {', '.join(item.consumer for item in loaders)}: shards "
                          f"{loader.shards}, group {loader.group!r}", ending="\n")
        self.stdout.flush()
        lock = threading.Lock()

        def progress(stats: LoadStats) -> None:
            backlog = _backlog()
            with lock:
                self.stdout.write(f"{stats.line()}; backlog {backlog}")
                self.stdout.flush()

        total = LoadStats()
        for stats in in_threads(loaders, lambda item: item.run(
                stop=lambda: stopping["now"], progress=progress,
                progress_seconds=options["progress"])):
            total.add(stats)
        self.stdout.write(f"stopped: {total.line()}")


def _backlog() -> str:
    from ...tracking.sinks.redis_stream import RedisStreamSink

    try:
        info = RedisStreamSink().backlog()
    except Exception as exc:  # the line still goes out
        return f"unknown ({exc})"
    return (f"{info['pending_batches']} batches waiting, lag {info['lag_seconds']} s, "
            f"{info['dead_letters']} dead letters")
