"""The demo's cases and the middleware's promises, through Django's test client."""

import logging
from unittest import mock

import pytest
from django.core.signing import Signer

from microadjust_cms.faults import counters

from .conftest import BOT_UA, DESKTOP_UA, MOBILE_UA, TABLET_UA
from .helpers import variants

pytestmark = pytest.mark.django_db


def test_first_visit_gets_defaults_and_a_visitor_cookie(client, demo):
    response = client.get("/", HTTP_USER_AGENT=DESKTOP_UA)
    chosen = variants(response)
    assert chosen["welcome-hero"] == "default"
    assert chosen["fresh-content"] == "default"
    assert chosen["mobile-banner"] == "default"
    assert chosen["newsletter-offer"] == "default"
    assert "ma_vid" in response.cookies
    assert response.cookies["ma_vid"]["httponly"]
    assert "Cookie" in response["Vary"]
    assert "private" in response["Cache-Control"]


def test_mobile_user_agent_gets_the_mobile_banner(client, demo):
    assert variants(client.get("/", HTTP_USER_AGENT=MOBILE_UA))["mobile-banner"] == "mobile"
    assert variants(client.get("/", HTTP_USER_AGENT=TABLET_UA))["mobile-banner"] == "default"
    assert b"Get the app" in client.get("/", HTTP_USER_AGENT=MOBILE_UA).content


def test_newsletter_campaign_traffic(client, demo):
    response = client.get("/?utm_source=newsletter&utm_medium=email", HTTP_USER_AGENT=DESKTOP_UA)
    assert variants(response)["newsletter-offer"] == "newsletter"
    assert b"Thanks for reading our newsletter" in response.content
    assert variants(client.get("/?utm_source=twitter"))["newsletter-offer"] == "default"


def test_repeat_view_of_the_same_page_surfaces_fresh_content(client, demo):
    assert variants(client.get("/"))["fresh-content"] == "default"
    client.get("/article/")
    second = client.get("/")
    assert variants(second)["fresh-content"] == "repeat-view"
    assert b"Fresh since you last looked" in second.content
    assert "ma_vid" not in second.cookies  # the cookie is issued once


def test_returning_visitor_after_thirty_idle_minutes(client, demo):
    with mock.patch("microadjust_cms.visitor.context.time.time", return_value=1_800_000_000.0):
        assert variants(client.get("/"))["welcome-hero"] == "default"
    with mock.patch("microadjust_cms.visitor.context.time.time", return_value=1_800_000_000.0 + 600):
        assert variants(client.get("/"))["welcome-hero"] == "default"  # same visit
    with mock.patch("microadjust_cms.visitor.context.time.time",
                    return_value=1_800_000_000.0 + 600 + 1801):
        response = client.get("/")
    assert variants(response)["welcome-hero"] == "returning"
    assert b"Welcome back!" in response.content


def test_rule_segment_section_from_the_third_visit(client, demo):
    base = 1_800_000_000.0
    for visit in range(3):
        with mock.patch("microadjust_cms.visitor.context.time.time", return_value=base + visit * 4000):
            response = client.get("/article/")
        expected = "loyal" if visit == 2 else "default"
        assert variants(response)["loyal-readers-section"] == expected


def test_greeting_follows_site_time(client, demo, settings):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    def at(hour):
        moment = datetime(2026, 11, 27, hour, 0, tzinfo=ZoneInfo(settings.TIME_ZONE))
        with mock.patch("microadjust_cms.visitor.context.site_now", return_value=moment):
            return variants(client.get("/"))["greeting"]

    assert at(8) == "morning"
    assert at(14) == "default"
    assert at(20) == "evening"
    assert at(2) == "evening"  # night counts as evening in the demo


def test_plain_page_keeps_its_headers_and_touches_nothing(client, demo, settings):
    from django.test import Client

    from project.demo.models import HomePage

    plain = HomePage(title="Plain", slug="plain", body=[
        ("paragraph", "<p>Nothing personalized here.</p>")])
    demo["home"].add_child(instance=plain)
    plain.save_revision().publish()
    with mock.patch("microadjust_cms.visitor.stores.cache.CacheProfileStore.load") as load:
        response = client.get("/plain/")
    assert response.status_code == 200
    load.assert_not_called()
    assert not response.cookies  # no visitor cookie, no session cookie
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "microadjust" not in m]
    without_app = Client().get("/plain/")
    for header in ("Vary", "Cache-Control", "Set-Cookie"):
        assert response.get(header) == without_app.get(header), header
    assert "private" not in response.get("Cache-Control", "")


@pytest.mark.parametrize("cookie", ["", "garbage", "a" * 4000, "x:y:z", "%E2%98%83", "a:b"])
def test_bad_visitor_cookie_is_ignored_and_replaced(client, demo, cookie):
    client.cookies["ma_vid"] = cookie
    response = client.get("/")
    assert variants(response)["welcome-hero"] == "default"
    assert response.cookies["ma_vid"].value != cookie


def test_forged_visitor_cookie_is_replaced(client, demo):
    forged = Signer(salt="wrong-salt").sign("f" * 32)
    client.cookies["ma_vid"] = forged
    response = client.get("/")
    assert response.status_code == 200
    new = response.cookies["ma_vid"].value
    assert new != forged and "f" * 32 not in new


def test_valid_visitor_cookie_is_kept(client, demo):
    client.cookies["ma_vid"] = Signer(salt="microadjust_cms.visitor").sign("a" * 32)
    response = client.get("/")
    assert "ma_vid" not in response.cookies
    assert response.wsgi_request.visitor.visitor_id == "a" * 32


def test_signed_but_malformed_id_is_replaced(client, demo):
    client.cookies["ma_vid"] = Signer(salt="microadjust_cms.visitor").sign("../../etc/passwd")
    response = client.get("/")
    assert response.status_code == 200
    assert "ma_vid" in response.cookies


@pytest.mark.parametrize("query", [
    "?utm_source=" + "x" * 5000, "?utm_source=%00%ff", "?utm_source&utm_source=a",
    "?ref[]=1&utm_source[]=2", "?%E2%98%83=%E2%98%83", "?utm_source=newsletter&utm_source=b",
])
def test_odd_query_strings_render(client, demo, query):
    assert "welcome-hero" in variants(client.get("/" + query))


def test_no_user_agent_renders_desktop_defaults(client, demo):
    response = client.get("/", HTTP_USER_AGENT="")
    assert variants(response)["mobile-banner"] == "default"
    response = client.generic("GET", "/")
    assert response.status_code == 200


@pytest.mark.parametrize("header", [{"HTTP_DNT": "1"}, {"HTTP_SEC_GPC": "1"}])
def test_do_not_track_and_gpc_get_no_cookie_and_no_profile(client, demo, header):
    with mock.patch("microadjust_cms.visitor.stores.cache.CacheProfileStore.load") as load:
        first = client.get("/", **header)
        second = client.get("/", **header)
    load.assert_not_called()
    assert not first.cookies
    assert variants(second)["fresh-content"] == "default"  # no repeat-view memory
    # request signals still personalize
    assert variants(client.get("/", HTTP_USER_AGENT=MOBILE_UA, **header))["mobile-banner"] == \
        "mobile"


def test_consent_required_tracks_nothing_until_given(client, demo, settings):
    settings.MICROADJUST_REQUIRE_CONSENT = True
    assert not client.get("/").cookies
    client.cookies["ma_consent"] = "1"
    assert "ma_vid" in client.get("/").cookies


def test_bots_are_not_counted(client, demo):
    client.get("/", HTTP_USER_AGENT=BOT_UA)
    response = client.get("/", HTTP_USER_AGENT=BOT_UA)
    assert variants(response)["fresh-content"] == "default"


def test_store_down_renders_defaults_and_is_logged_and_counted(client, demo,
                                                                unreachable_redis_store, caplog):
    before = counters["profile_store"]
    with caplog.at_level(logging.WARNING, logger="microadjust_cms"):
        response = client.get("/?utm_source=newsletter", HTTP_USER_AGENT=MOBILE_UA)
    chosen = variants(response)
    assert chosen["welcome-hero"] == "default"
    assert chosen["fresh-content"] == "default"
    assert chosen["mobile-banner"] == "mobile"  # request signals still work
    assert chosen["newsletter-offer"] == "newsletter"
    assert counters["profile_store"] == before + 1  # one failure, not one per rule
    assert "Profile store unavailable" in caplog.text


@pytest.mark.redis
def test_demo_on_real_redis(client, demo, redis_store):
    client.get("/")
    assert variants(client.get("/"))["fresh-content"] == "repeat-view"


def test_logged_in_user_is_the_visitor(client, demo, django_user_model):
    user = django_user_model.objects.create_user("reader", password="x")
    client.force_login(user)
    first = client.get("/")
    assert first.wsgi_request.visitor.visitor_id == f"u{user.pk}"
    assert "ma_vid" not in first.cookies  # the account identifies them, no cookie needed
    assert variants(client.get("/"))["fresh-content"] == "repeat-view"
