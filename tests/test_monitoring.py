"""``/microadjust/metrics/``: off without a token, refused without the right one, and counting
what the request path did; across gunicorn workers in multiprocess mode."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from django.test import Client

from microadjust_cms import faults, metrics

from .helpers import visitor_client

pytestmark = pytest.mark.django_db
URL = "/microadjust/metrics/"
TOKEN = "scrape-me-" + "x" * 20
ROOT = Path(__file__).resolve().parent.parent


def scrape(client: Client) -> str:
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def value(text: str, name: str, **labels: str) -> float:
    """The sample's value, 0 when absent (counters start there)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_off_without_a_token_and_refused_with_a_wrong_one(settings, client):
    settings.MICROADJUST_METRICS_TOKEN = None
    assert client.get(URL).status_code == 404
    settings.MICROADJUST_METRICS_TOKEN = TOKEN
    assert client.get(URL).status_code == 403
    assert client.get(URL, HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_collect_answers_decisions_faults_pages_and_the_backlog_are_counted(settings, demo):
    settings.MICROADJUST_METRICS_TOKEN = TOKEN
    client = visitor_client()
    before = scrape(Client())
    assert client.get("/").status_code == 200  # the demo's home: personalized blocks
    now = int(time.time() * 1000)
    batch = {"v": 1, "events": [{"type": "pageview", "t": now, "page": demo["home"].pk, "path": "/"}]}
    origin = {"HTTP_ORIGIN": "http://testserver"}
    assert client.post("/microadjust/collect/", json.dumps(batch), content_type="application/json",
                       **origin).status_code == 204
    assert client.post("/microadjust/collect/", "{nope", content_type="application/json",
                       **origin).status_code == 400
    faults.record("profile_store", "a test's fault")
    after = scrape(Client())

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("microadjust_collect_batches_total", status="204", reason="stored") == 1
    assert grew("microadjust_collect_batches_total", status="400", reason="malformed_json") == 1
    assert grew("microadjust_faults_total", kind="profile_store") == 1
    def decisions(text: str) -> float:
        return sum(float(v) for v in re.findall(r"^microadjust_decisions_total\{[^}]*\} ([\d.e+]+)$", text, re.M))

    assert decisions(after) - decisions(before) >= 1  # the home page's personalized blocks
    assert grew("microadjust_page_seconds_count", personalized="yes") >= 1
    assert value(after, "microadjust_event_sink_up", sink="database") == 1


def test_block_series_are_bounded(settings):
    settings.MICROADJUST_METRICS_TOKEN = TOKEN
    settings.MICROADJUST_METRICS_MAX_BLOCK_SERIES = 1
    metrics._block_series.clear()
    metrics.count_decisions([("first", "v1", "match"), ("second", "v1", "match"), ("third", "v2", "default")])
    text = scrape(Client())
    assert value(text, "microadjust_decisions_total", block="first", variant="v1", reason="match") >= 1
    assert value(text, "microadjust_decisions_total", block="second", variant="v1") == 0
    assert value(text, "microadjust_decisions_total", block="other", variant="other", reason="match") >= 1
    assert value(text, "microadjust_decisions_total", block="other", variant="other", reason="default") >= 1
    metrics._block_series.clear()


def test_the_grafana_dashboard_reads_only_metrics_the_endpoint_serves(settings, demo, stream_sink):
    """On the stream sink, which reports every pipeline gauge (the database sink has no lag)."""
    settings.MICROADJUST_METRICS_TOKEN = TOKEN
    visitor_client().get("/")
    metrics.count_collect(204, "stored")
    faults.record("profile_store", "a test's fault")
    served = {line.split("{")[0].split(" ")[0] for line in scrape(Client()).splitlines()
              if line and not line.startswith("#")}
    dashboard = json.loads((ROOT / "docs" / "grafana" / "microadjust.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(exprs) >= 6
    for expr in exprs:
        names = set(re.findall(r"\bmicroadjust_[a-z_]+", expr))
        assert names and names <= served, f"{expr}: {names - served} not served"


@pytest.fixture
def metrics_site(own_database, tmp_path):
    """The fault site (gunicorn: 2 workers, 4 threads each) with metrics on, multiprocess."""
    from .fault_servers import serve_site

    shared = tmp_path / "prometheus"
    shared.mkdir()
    yield from serve_site(own_database, tmp_path, env={"METRICS_TOKEN": TOKEN,
                                                       "PROMETHEUS_MULTIPROC_DIR": str(shared)})


@pytest.mark.django_db(transaction=True)
def test_a_scrape_counts_every_gunicorn_worker(metrics_site):
    """Batches land on both workers; one scrape, answered by one worker, reports them all."""
    from .fault_servers import Visitor

    visitors = [Visitor(metrics_site, f"Mozilla/5.0 (metrics {i})") for i in range(6)]
    for visitor in visitors:
        assert visitor.get("/")[0] == 200  # the cookie, and a personalized page
    sent = 0
    # A connection each: a kept-alive one stays with the worker that accepted it, and both
    # workers wait on the same socket, so many fresh connections reach both.
    for i in range(60):
        visitor = Visitor(metrics_site, f"Mozilla/5.0 (metrics batch {i})")
        visitor.cookies = dict(visitors[i % len(visitors)].cookies)
        status, _, _ = visitor.collect([{"type": "pageview", "t": int(time.time() * 1000), "path": "/"}])
        assert status == 204
        if visitor.connection is not None:
            visitor.connection.close()
        sent += 1
    time.sleep(2.5)  # each worker's thread hands its counts over once a second
    scraper = Visitor(metrics_site, "Prometheus/2.0")
    status, headers, body = scraper.request("GET", URL, headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    text = body.decode()
    assert value(text, "microadjust_collect_batches_total", status="204", reason="stored") == sent
    assert value(text, "microadjust_page_seconds_count", personalized="yes") >= len(visitors)
    # Both workers counted (one file of counters per process) and the scrape summed them.
    written = list(Path(metrics_site.env["PROMETHEUS_MULTIPROC_DIR"]).glob("counter_*.db"))
    assert len(written) >= 2, written
    assert scraper.request("GET", URL)[0] == 403


def test_with_metrics_off_the_request_path_counts_nothing(settings, demo):
    settings.MICROADJUST_METRICS_TOKEN = TOKEN
    before = scrape(Client())
    settings.MICROADJUST_METRICS_TOKEN = None
    client = visitor_client()
    assert client.get("/").status_code == 200
    assert client.post("/microadjust/collect/", "{nope", content_type="application/json",
                       HTTP_ORIGIN="http://testserver").status_code == 400
    assert not metrics._pages
    settings.MICROADJUST_METRICS_TOKEN = TOKEN
    after = scrape(Client())
    assert value(after, "microadjust_collect_batches_total", status="400", reason="malformed_json") == \
        value(before, "microadjust_collect_batches_total", status="400", reason="malformed_json")
    assert value(after, "microadjust_page_seconds_count", personalized="yes") == \
        value(before, "microadjust_page_seconds_count", personalized="yes")
