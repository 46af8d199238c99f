"""What the event pipeline holds right now: the admin's "Event pipeline" page and the loader's
``--status`` (Prometheus text) read it."""

from __future__ import annotations

from typing import Any

from .partitions import is_partitioned, monthly_partitions, partition_rows
from .sinks import SinkUnavailable, get_event_sink
from .sinks.redis_stream import RedisStreamSink, dead_letter_key


def pipeline_status(*, dead_letters: int = 20) -> dict[str, Any]:
    """The sink's backlog (or why it could not be read), the newest dead letters and, on
    PostgreSQL, the event partitions with their estimated rows."""
    sink = get_event_sink()
    status: dict[str, Any] = {"sink": sink.name, "backlog": None, "error": "", "dead": [],
                              "partitions": []}
    try:
        status["backlog"] = sink.backlog()
    except SinkUnavailable as exc:
        status["error"] = str(exc)
    if isinstance(sink, RedisStreamSink) and not status["error"] and dead_letters:
        status["dead"] = _newest_dead_letters(sink, dead_letters)
    if is_partitioned():
        estimates = partition_rows()
        status["partitions"] = [{"month": month, "name": name, "rows": estimates.get(name, 0)}
                                for month, name in sorted(monthly_partitions().items())]
    return status


def _newest_dead_letters(sink: RedisStreamSink, count: int) -> list[dict[str, str]]:
    from ..conf import get_setting

    letters = []
    for shard in range(get_setting("EVENT_STREAM_SHARDS")):
        for entry_id, fields in sink.client.xrevrange(dead_letter_key(shard), count=count):
            text = {k.decode(): v.decode(errors="replace") for k, v in fields.items()}
            letters.append({"id": entry_id.decode(), "batch": text.get("b", ""),
                            "visitor": text.get("v", ""), "reason": text.get("reason", ""),
                            "shard": str(shard)})
    return sorted(letters, key=lambda letter: letter["id"], reverse=True)[:count]


def gauges(status: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(name, help, value) of the backlog's Prometheus gauges that ``status`` has values for."""
    backlog = status.get("backlog") or {}
    found = (("microadjust_event_backlog_batches", "Batches in the event stream waiting for a loader",
              backlog.get("pending_batches")),
             ("microadjust_event_unacknowledged_batches", "Batches a loader read and has not acknowledged",
              backlog.get("unacknowledged")),
             ("microadjust_event_dead_letters", "Batches moved to the dead-letter stream",
              backlog.get("dead_letters")),
             ("microadjust_event_loader_lag_seconds", "Age of the oldest batch waiting",
              backlog.get("lag_seconds")),
             ("microadjust_event_sink_up", "1 when the event sink answered", 0 if status.get("error") else 1))
    return [(name, help_text, value) for name, help_text, value in found if value is not None]


def prometheus_text(status: dict[str, Any]) -> str:
    """The backlog as Prometheus gauges (for a textfile collector: ``--status``)."""
    lines = []
    for name, help_text, value in gauges(status):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge",
                  f'{name}{{sink="{status["sink"]}"}} {value}']
    return "\n".join(lines) + "\n"
