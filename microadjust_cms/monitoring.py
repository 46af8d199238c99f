"""``/metrics`` for Prometheus: the request path's counters (``metrics``) and, read at scrape
time, the event pipeline's backlog and the loader's lag.

Off unless ``METRICS_TOKEN`` is set (404); a scrape must send ``Authorization: Bearer <token>``
(403 otherwise). Under gunicorn, set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory, emptied
at each deploy) so a scrape sees every worker's counts, not just the one that answered it.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from . import metrics
from .conf import get_setting
from .responses import problem

PLAIN_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PipelineCollector:
    """The event sink's backlog, as gauges, read when scraped."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from .tracking.pipeline_status import gauges, pipeline_status

        status = pipeline_status()
        for name, help_text, value in gauges(status):
            gauge = GaugeMetricFamily(name, help_text, labels=["sink"])
            gauge.add_metric([status.get("sink", "")], float(value))
            yield gauge


def _registry() -> Any:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    return REGISTRY


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = get_setting("METRICS_TOKEN")
    if not token:
        return problem(404, "not_found", "metrics are off (set MICROADJUST_METRICS_TOKEN)")
    offered = request.META.get("HTTP_AUTHORIZATION", "")
    if not hmac.compare_digest(offered.encode(), f"Bearer {token}".encode()):
        return problem(403, "forbidden", "send Authorization: Bearer <MICROADJUST_METRICS_TOKEN>")
    metrics.flush(force=True)
    registry = CollectorRegistry()
    registry.register(_Both(_registry(), PipelineCollector()))
    return HttpResponse(generate_latest(registry), content_type=PLAIN_CONTENT_TYPE)


class _Both:
    """The process (or multiprocess) registry and the pipeline gauges as one collector."""

    def __init__(self, registry: Any, pipeline: PipelineCollector) -> None:
        self.registry, self.pipeline = registry, pipeline

    def collect(self) -> Iterator[Any]:
        yield from self.registry.collect()
        yield from self.pipeline.collect()


__all__ = ["PipelineCollector", "metrics_view"]
