"""Behaviour signals: what tracked events do to the profile, and what conditions then see."""

import json
import logging
import time

import pytest
from django.test import RequestFactory

from microadjust_cms.behaviour import engagement_level, engagement_score, summarize, top_affinity
from microadjust_cms.faults import counters
from microadjust_cms.tracking.models import Event
from microadjust_cms.visitor.context import VisitorContext
from microadjust_cms.visitor.stores import Profile

from .conftest import DESKTOP_UA
from .helpers import variants, visitor_client

COLLECT = "/microadjust/collect/"


def row(kind, **fields):
    return {"type": kind, "page_id": fields.pop("page", 3), "path": "/", "block_id": "",
            "value": None, "content_type": "", "tags": "", **fields}


def test_summarize_follows_the_documented_points():
    update = summarize([
        row("pageview"),
        row("impression", block_id="hero", content_type="video", tags="howto cooking"),
        row("dwell", block_id="hero", value=25_000, content_type="video"),
        row("dwell", block_id="hero", value=600_000, content_type="video"),  # capped at 6
        row("scroll", value=75), row("scroll", value=50), row("scroll", value=25, page=8),
        row("click", block_id="hero"), row("click", block_id="hero"),
        row("abandon", block_id="offer", value=900),
        row("conversion", name="signup", content_type="article"),
    ])
    # 1 + 0.5 + 2.5 + 6 + 3 × 0.5 + 2 × 3 + 0 + 10
    assert update.engagement == pytest.approx(27.5)
    assert update.affinity == pytest.approx({"video": 9.0, "howto": 0.5, "cooking": 0.5,
                                             "article": 5.0})
    assert update.page_scroll == {"3": 75, "8": 25}
    assert update.page_dwell == pytest.approx({"3": 625.0})
    assert update.block_abandons == {"offer": 1}
    assert update.block_clicks == {"hero": 2}
    assert update.conversions == 1
    assert not summarize([row("abandon", block_id="")])  # nothing to apply


@pytest.mark.parametrize("points, score, level", [(0, 0, "low"), (5, 22, "low"),
                                                  (10, 39, "medium"), (20, 63, "high"),
                                                  (40, 86, "high")])
def test_engagement_score_and_level(points, score, level):
    assert engagement_score(points, 20.0) == score
    assert engagement_level(score, (30, 60)) == level


def test_top_affinity_needs_enough_points_and_breaks_ties_by_name():
    assert top_affinity({"video": 1.5}, 2.0) is None
    assert top_affinity({"video": 3.0, "article": 5.0}, 2.0) == "article"
    assert top_affinity({"video": 3.0, "article": 3.0}, 2.0) == "article"


def visitor_with(**profile):
    return VisitorContext(RequestFactory().get("/"), overrides={"profile": Profile(**profile)})


def test_behaviour_signals_read_the_profile():
    visitor = visitor_with(engagement=20.0, affinity={"video": 4.0, "news": 1.0}, conversions=2,
                           page_scroll=75, page_dwell=42.5, abandoned=frozenset({"hero"}),
                           clicked=frozenset({"offer"}),
                           last_visit_end=time.time() - 3 * 86400 - 60)
    assert visitor.signal("engagement_score") == 63
    assert visitor.signal("engagement_level") == "high"
    assert visitor.signal("content_affinity") == "video"
    assert (visitor.signal("scroll_depth"), visitor.signal("dwell_seconds")) == (75, 42.5)
    assert visitor.signal("abandoned", "hero") is True
    assert visitor.signal("abandoned", "offer") is False
    assert visitor.signal("clicked", "offer") is True
    assert visitor.signal("conversions") == 2
    assert visitor.signal("days_since_last_visit") == 3
    first = visitor_with()
    assert first.signal("days_since_last_visit") is None
    assert first.signal("content_affinity") is None
    assert first.signal("engagement_level") == "low"


def test_this_block_in_a_variant_means_that_block(demo):
    from microadjust_cms.rendering.block_ids import object_personalized_values

    article = demo["article"]
    related = next(v for v in object_personalized_values(article) if v.block_id == "related-reading")
    assert related.decide(visitor_with()).variant == "default"
    assert related.decide(visitor_with(abandoned=frozenset({"other-block"}))).variant == "default"
    assert related.decide(visitor_with(abandoned=frozenset({"related-reading"}))).variant \
        == "second-chance"


# -- through the collect endpoint, on the cache store and on real Redis ----------------------

@pytest.fixture(params=["cache", "redis"])
def store_kind(request):
    if request.param == "redis":
        request.getfixturevalue("redis_store")
    return request.param


def reader():
    return visitor_client(HTTP_USER_AGENT=DESKTOP_UA)


def send(client, *events):
    t = int(time.time() * 1000)
    body = {"v": 1, "events": [{"t": t, **event} for event in events]}
    response = client.post(COLLECT, data=json.dumps(body), content_type="application/json",
                           HTTP_ORIGIN="http://testserver")
    assert response.status_code == 204, response.content
    return response


def story_variant(client, article) -> str:
    return variants(client.get(article.url))["story-depth"]


def test_news_case_engaged_readers_get_depth_casual_readers_the_summary(demo, store_kind):
    article = demo["article"]
    casual, engaged = reader(), reader()
    send(casual, {"type": "pageview", "page": article.pk, "path": article.url})
    assert story_variant(casual, article) == "default"  # the summary
    reading = [{"type": "pageview", "page": article.pk, "path": article.url}]
    for block in ("story-depth", "related-reading"):
        reading += [{"type": "impression", "page": article.pk, "block": block, "variant": "default",
                     "kind": "news"},
                    {"type": "dwell", "page": article.pk, "block": block, "variant": "default",
                     "value": 90_000, "kind": "news", "tags": "reading"},
                    {"type": "click", "page": article.pk, "block": block, "variant": "default"}]
    reading += [{"type": "scroll", "page": article.pk, "value": v} for v in (25, 50, 75, 90, 100)]
    send(engaged, *reading)  # 1 + 2 × (0.5 + 6 + 3) + 2.5 = 22.5 points: score 68, high
    assert story_variant(engaged, article) == "in-depth"
    assert story_variant(casual, article) == "default"
    assert Event.objects.filter(type="dwell").count() == 2


def test_collect_updates_the_profile_conditions_read(demo, store_kind):
    article = demo["article"]
    client = reader()
    send(client,
         {"type": "impression", "page": article.pk, "block": "related-reading",
          "variant": "default", "kind": "video", "tags": "howto"},
         {"type": "dwell", "page": article.pk, "block": "related-reading", "variant": "default",
          "value": 30_000, "kind": "video"},
         {"type": "scroll", "page": article.pk, "value": 50},
         {"type": "abandon", "page": article.pk, "block": "related-reading", "variant": "default",
          "value": 900},
         {"type": "conversion", "name": "signup", "page": article.pk})
    # The server now renders the abandoned block's second-chance variant, and the visitor's
    # profile answers every behaviour signal.
    assert variants(client.get(article.url))["related-reading"] == "second-chance"
    request = RequestFactory().get(article.url)
    request.COOKIES = dict((k, v.value) for k, v in client.cookies.items())
    visitor = VisitorContext(request)
    visitor.set_page(article)
    assert visitor.signal("content_affinity") == "video"  # 0.5 + 3 points
    assert visitor.signal("scroll_depth") == 50
    assert visitor.signal("dwell_seconds") == pytest.approx(30.0)
    assert visitor.signal("abandoned", "related-reading") is True
    assert visitor.signal("conversions") == 1
    assert visitor.signal("engagement_score") == engagement_score(0.5 + 3 + 0.5 + 10, 20.0)


def test_redis_down_pages_render_defaults_and_events_are_still_stored(
        demo, unreachable_redis_store, caplog):
    """The profile store on a closed port: nothing but the profile is lost, and it is logged."""
    failures = counters["profile_store"]
    client = reader()
    with caplog.at_level(logging.WARNING):
        home = client.get(demo["home"].url, HTTP_USER_AGENT=DESKTOP_UA)
        assert home.status_code == 200
        html = home.content.decode()
        assert 'data-ma-block="welcome-hero" data-ma-variant="default"' in html
        assert 'data-ma-block="fresh-content" data-ma-variant="default"' in html
        send(client, {"type": "pageview", "page": demo["home"].pk, "path": "/"},
             {"type": "click", "block": "welcome-hero", "variant": "default"})
    assert Event.objects.filter(type__in=["pageview", "click"]).count() == 2
    assert counters["profile_store"] >= failures + 2  # the page and the batch
    messages = [r.getMessage() for r in caplog.records if "profile_store" in r.getMessage()]
    # Counted twice, logged once: an outage is not a warning per request (faults.py).
    assert len(messages) == 1 and "Profile store unavailable" in messages[0]
