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
