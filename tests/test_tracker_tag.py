"""``{% microadjust_tracker %}``: the script and its settings, or nothing for DNT / GPC."""

import gzip
import json
import re
from pathlib import Path

import pytest
from django.template import Context, Template
from django.test import RequestFactory

import microadjust_cms

TRACKER = Path(microadjust_cms.__file__).parent / "static" / "microadjust_cms" / "js" / "tracker.js"


def render(request, **context):
    return Template("{% load microadjust %}{% microadjust_tracker %}").render(
        Context({"request": request, **context}))


class FakePage:
    pk = 42


def test_settings_reach_the_script_through_json_script(settings):
    settings.MICROADJUST_REQUIRE_CONSENT = True
    html = render(RequestFactory().get("/article/"), page=FakePage())
    match = re.search(r'<script id="microadjust-config" type="application/json">(.*?)</script>', html)
    config = json.loads(match.group(1))
    assert config["endpoint"] == "/microadjust/collect/"
    assert (config["page"], config["path"], config["consent"]) == (42, "/article/", True)
    assert config["impressionMs"] == 750 and config["flushMs"] == 5000
    assert (config["fragment"], config["swapCap"]) == ("/microadjust/api/fragment/", 2)
    assert re.search(r'<script src="[^"]*microadjust_cms/js/tracker\.js" defer></script>', html)
    assert "window." not in html  # no inline globals


@pytest.mark.parametrize("header", ["HTTP_DNT", "HTTP_SEC_GPC"])
def test_nothing_for_do_not_track_or_gpc(header):
    assert render(RequestFactory().get("/", **{header: "1"})) == ""


def test_no_request_no_tracker():
    assert Template("{% load microadjust %}{% microadjust_tracker %}").render(Context({})) == ""


def test_tracker_is_under_3_kb_gzipped():
    size = len(gzip.compress(TRACKER.read_bytes(), compresslevel=9))
    assert size < 3 * 1024, f"tracker.js is {size} bytes gzipped"


def test_shipped_tracker_is_the_minified_source():
    from microadjust_cms.build_tracker import minified_tracker

    assert TRACKER.read_text() == minified_tracker(), "run `make tracker` after editing the source"


MOBILE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
PERSONALIZED = '{% ifvisitor segment="mobile" %}in{% endifvisitor %}'


def config_of(html):
    match = re.search(r'<script id="microadjust-config" type="application/json">(.*?)</script>', html)
    return json.loads(match.group(1))


def render_page(request, source=PERSONALIZED):
    return Template("{% load microadjust %}" + source + "{% microadjust_tracker %}").render(
        Context({"request": request}))


@pytest.fixture
def segments(db):
    from microadjust_cms.segments.models import Segment

    Segment.objects.create(name="Mobile", slug="mobile", condition={"signal": "device", "op": "eq", "value": "mobile"})
    Segment.objects.create(name="Newsletter", slug="newsletter", condition={
        "signal": "utm_source", "op": "eq", "value": "newsletter"})
    Segment.objects.create(name="Tablets", slug="tablets", condition={
        "signal": "device", "op": "eq", "value": "tablet"})


def test_a_page_that_adjusted_something_stamps_the_visitors_segments(segments):
    """Every segment the visitor is in, evaluated for the stamp (not only those the page asked
    about), in slug order; not the ones they are not in."""
    html = render_page(RequestFactory().get("/?utm_source=newsletter", HTTP_USER_AGENT=MOBILE_UA))
    assert config_of(html)["seg"] == "mobile newsletter"
    html = render_page(RequestFactory().get("/", HTTP_USER_AGENT=MOBILE_UA))
    assert config_of(html)["seg"] == "mobile"


def test_no_stamp_without_an_adjustment_or_when_switched_off(segments, settings):
    request = RequestFactory().get("/?utm_source=newsletter", HTTP_USER_AGENT=MOBILE_UA)
    assert "seg" not in config_of(render_page(request, source="plain"))
    settings.MICROADJUST_ANALYTICS_SEGMENTS = False
    assert "seg" not in config_of(render_page(RequestFactory().get("/", HTTP_USER_AGENT=MOBILE_UA)))


def test_no_stamp_for_a_visitor_in_no_segment_or_an_editors_preview(segments):
    from microadjust_cms.visitor.context import VisitorContext

    assert "seg" not in config_of(render_page(RequestFactory().get("/")))  # a desktop, no UTM
    request = RequestFactory().get("/", HTTP_USER_AGENT=MOBILE_UA)
    request.visitor = VisitorContext(request, overrides={"segments": ["mobile"]})  # "preview as"
    html = render_page(request)
    assert "in" in html and "seg" not in config_of(html)


def test_the_cluster_comes_first_and_the_stamp_stays_within_the_schemas_bounds(db):
    from django.utils import timezone

    from microadjust_cms.learning.models import Cluster
    from microadjust_cms.segments.models import Segment
    from microadjust_cms.testutils import override_signal
    from microadjust_cms.tracking.schema import MAX_SEGMENTS, MAX_SEGMENTS_LENGTH, validate_batch

    Cluster.objects.create(number=2, slug="cluster-2", name="Deal hunters")
    everyone = {"signal": "device", "op": "in", "value": ["mobile", "desktop", "tablet", "bot"]}
    for i in range(12):
        Segment.objects.create(name=f"All {i}", slug=f"all-{i:02d}-" + "x" * 20, condition=everyone)
    with override_signal("cluster", "cluster-2"):
        html = render_page(RequestFactory().get("/", HTTP_USER_AGENT=MOBILE_UA),
                           source='{% ifvisitor segment="all-00-xxxxxxxxxxxxxxxxxxxx" %}in{% endifvisitor %}')
    stamp = config_of(html)["seg"]
    slugs = stamp.split(" ")
    assert slugs[0] == "cluster-2" and slugs[1:] == sorted(slugs[1:])
    assert len(stamp) <= MAX_SEGMENTS_LENGTH and len(slugs) <= MAX_SEGMENTS
    # "cluster-2" and six 27-character slugs make 177 characters; a seventh would make 205.
    assert len(slugs) == 7
    validate_batch({"v": 1, "events": [{"type": "pageview", "t": int(timezone.now().timestamp() * 1000),
                                        "seg": stamp}]}, now=timezone.now(), max_events=10)
