"""The fragment API: the same decision as server rendering, one block at a time, as JSON."""

import pytest

from .conftest import BOT_UA, DESKTOP_UA, MOBILE_UA

URL = "/microadjust/api/fragment/"


def fragment(client, page, block, ua=DESKTOP_UA, **params):
    return client.get(URL, {"page": page.pk, "block": block, **params}, HTTP_USER_AGENT=ua)


def test_the_block_is_decided_like_the_page(client, demo):
    home = demo["home"]
    response = fragment(client, home, "mobile-banner", reason="abandon", ua=MOBILE_UA)
    assert response.status_code == 200
    data = response.json()
    assert (data["block"], data["variant"], data["reason"]) == ("mobile-banner", "mobile", "abandon")
    assert 'data-ma-block="mobile-banner" data-ma-variant="mobile"' in data["html"]
    assert "Get the app" in data["html"]
    assert "private" in response["Cache-Control"]
    assert "Cookie" in response["Vary"]

    desktop = fragment(client, home, "mobile-banner", ua=DESKTOP_UA).json()
    assert desktop["variant"] == "default" and desktop["reason"] == "manual"


def test_exclude_gives_the_next_best_variant(client, demo):
    home = demo["home"]
    data = fragment(client, home, "mobile-banner", exclude="mobile", ua=MOBILE_UA).json()
    assert data["variant"] == "default"
    # The query string of the fragment request is the visitor's: utm_source reaches conditions.
    assert fragment(client, home, "newsletter-offer", utm_source="newsletter").json()["variant"] \
        == "newsletter"
    assert fragment(client, home, "newsletter-offer", utm_source="newsletter",
                    exclude="newsletter").json()["variant"] == "default"


def test_the_adjustment_is_recorded_but_no_page_view(client, demo):
    from microadjust_cms.visitor.stores import get_profile_store

    article = demo["article"]
    response = fragment(client, article, "loyal-readers-section")
    visitor = response.wsgi_request.visitor
    assert [a.block_id for a in visitor.adjustments] == ["loyal-readers-section"]
    assert visitor.page_key == str(article.pk)
    profile = get_profile_store().load(visitor.visitor_id, str(article.pk), record_view=False,
                                       now=0)
    assert (profile.page_views, profile.visits) == (0, 0)  # a fragment is not a page view


@pytest.mark.parametrize(("params", "mentions"), [
    ({"page": "abc", "block": "mobile-banner"}, "page:"),
    ({"page": "1" * 11, "block": "mobile-banner"}, "page:"),
    ({"block": "mobile-banner"}, "page:"),
    ({"page": "3", "block": "<script>"}, "block:"),
    ({"page": "3", "block": "mobile-banner", "reason": "because"}, "reason:"),
    ({"page": "3", "block": "mobile-banner", "exclude": "x" * 51}, "exclude:"),
    # str.isdigit() accepts these; only ASCII digits are ids (issue 12: "²" was a 500, "٣" page 3).
    ({"page": "\u00b2", "block": "mobile-banner"}, "page:"),
    ({"page": "\u0663", "block": "mobile-banner"}, "page:"),
    ({"page": "3\n", "block": "mobile-banner"}, "page:"),
    ({"page": "0", "block": "mobile-banner"}, "page:"),
    ({"page": str(2**31), "block": "mobile-banner"}, "page:"),
    ({"page": "3", "block": "mobile-banner\n"}, "block:"),
    ({"page": "3", "block": "mobile-banner", "exclude": "a\x00"}, "exclude:"),
])
def test_bad_parameters_are_a_400_naming_them(client, demo, params, mentions):
    response = client.get(URL, params)
    assert response.status_code == 400
    assert any(line.startswith(mentions) for line in response.json()["detail"])


def test_unknown_pages_and_blocks_are_404(client, demo):
    assert fragment(client, demo["home"], "no-such-block").status_code == 404
    response = client.get(URL, {"page": 999999, "block": "mobile-banner"})
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    # A block of another page is not found through this one.
    assert fragment(client, demo["home"], "loyal-readers-section").status_code == 404


def test_unpublished_and_restricted_pages_are_refused(client, demo):
    from wagtail.models import PageViewRestriction

    article = demo["article"]
    article.unpublish()
    assert fragment(client, article, "loyal-readers-section").status_code == 404
    article.save_revision().publish()
    assert fragment(client, article, "loyal-readers-section").status_code == 200
    PageViewRestriction.objects.create(page=article, restriction_type="password", password="s3cret")
    response = fragment(client, article, "loyal-readers-section")
    assert response.status_code == 403 and response.json()["error"] == "restricted"


def test_only_get(client, demo):
    response = client.post(URL, {"page": demo["home"].pk, "block": "mobile-banner"})
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"
    assert response["Allow"] == "GET, HEAD"


def test_database_unavailable_is_a_503_with_retry_after(client, demo, monkeypatch):
    """Issue 12: collect answered 503 with the database down, the fragment API 500."""
    from django.db import OperationalError

    from microadjust_cms.faults import counters

    def unreachable(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("microadjust_cms.rendering.fragments.cached_personalized_value", unreachable)
    response = fragment(client, demo["home"], "mobile-banner")
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert response.json()["error"] == "unavailable"
    assert counters["database"] == 1


def publish_card_page(triggers):
    from wagtail.models import Site

    from microadjust_cms.rendering.block_ids import as_saved
    from project.demo.models import HomePage

    def card(title):
        return {"title": title, "text": "", "link_label": "", "link_url": ""}

    body = [{"type": "personalized_card", "value": {
        "block_id": "trigger-card", "default": card("Default"), "triggers": triggers,
        "variants": [{"name": "bots-only", "condition": {"signal": "device", "op": "eq",
                                                         "value": "bot"},
                      "content": card("Named variant")}]}}]
    root = Site.objects.get(is_default_site=True).root_page
    page = HomePage(title="Triggers", slug="triggers", body=as_saved(HomePage.body.field, body))
    root.add_child(instance=page)
    page.save_revision().publish()
    return page


def test_the_block_trigger_settings_name_the_variant_not_the_request(client, demo):
    page = publish_card_page({"on_abandon": "variant", "abandon_variant": "bots-only",
                              "reveal_after": 5, "reveal_variant": "bots-only"})
    html = client.get(page.url, HTTP_USER_AGENT=DESKTOP_UA).content.decode()
    assert ('data-ma-block="trigger-card" data-ma-variant="default" data-ma-kind="article" '
            'data-ma-abandon="1" data-ma-reveal="5"') in html
    # A desktop visitor is no bot, but the editor asked for that variant on abandon and reveal.
    for reason in ("abandon", "timer"):
        data = fragment(client, page, "trigger-card", reason=reason, exclude="default").json()
        assert data["variant"] == "bots-only" and "Named variant" in data["html"]
    # Without a trigger reason the best match decides as on the page.
    assert fragment(client, page, "trigger-card", reason="manual").json()["variant"] == "default"


def test_best_other_match_on_abandon(client, demo):
    page = publish_card_page({"on_abandon": "best"})
    data = fragment(client, page, "trigger-card", reason="abandon", exclude="default").json()
    assert data["variant"] == "default"  # nothing else matches: the tracker keeps the block
    bot = fragment(client, page, "trigger-card", ua=BOT_UA, reason="abandon", exclude="default")
    assert bot.json()["variant"] == "bots-only"


@pytest.mark.parametrize("triggers, field, message", [
    ({"on_abandon": "variant"}, "abandon_variant", "Name the variant"),
    ({"on_abandon": "variant", "abandon_variant": "nope"}, "abandon_variant", "No variant named nope"),
    ({"reveal_after": 3, "reveal_variant": "nope"}, "reveal_variant", "No variant named nope"),
    ({"reveal_variant": "bots-only"}, "reveal_after", "after how many seconds"),
])
def test_trigger_settings_are_checked_when_saved(demo, triggers, field, message):
    from wagtail.blocks.struct_block import StructBlockValidationError

    from project.demo.models import HomePage

    block = HomePage.body.field.stream_block.child_blocks["personalized_card"]
    value = block.to_python({
        "block_id": "b1", "default": {"title": "Default"},
        "triggers": {"on_abandon": "", "abandon_variant": "", "reveal_after": None,
                     "reveal_variant": "", **triggers},
        "variants": [{"name": "bots-only", "condition": {"signal": "device", "op": "eq",
                                                         "value": "bot"},
                      "content": {"title": "Bots"}}]})
    with pytest.raises(StructBlockValidationError) as caught:
        block.clean(value)
    errors = caught.value.block_errors["triggers"].block_errors
    assert message in str(errors[field])


def _edit_mobile_banner(page, text):
    import json

    raw = json.loads(json.dumps(list(page.body.raw_data)))
    for child in raw:
        if isinstance(child["value"], dict) and child["value"].get("block_id") == "mobile-banner":
            child["value"]["variants"][0]["content"]["text"] = text
    page.body = raw


def test_a_new_live_revision_is_served_at_once(client, demo):
    home = demo["home"]
    assert "Get the app" in fragment(client, home, "mobile-banner", ua=MOBILE_UA).json()["html"]
    _edit_mobile_banner(home, "Try the new app")
    home.save_revision()  # a draft: visitors still get the live content
    assert "Get the app" in fragment(client, home, "mobile-banner", ua=MOBILE_UA).json()["html"]
    home.get_latest_revision().publish()
    assert "Try the new app" in fragment(client, home, "mobile-banner", ua=MOBILE_UA).json()["html"]
    home.unpublish()
    assert fragment(client, home, "mobile-banner", ua=MOBILE_UA).status_code == 404


def test_a_page_without_a_live_revision_is_read_each_time(client, demo):
    from wagtail.models import Page

    home = demo["home"]
    Page.objects.filter(pk=home.pk).update(live_revision=None)
    home.refresh_from_db()
    _edit_mobile_banner(home, "Saved without a revision")
    home.save()
    assert "Saved without a revision" in fragment(client, home, "mobile-banner",
                                                  ua=MOBILE_UA).json()["html"]


def test_cached_values_are_not_shared_between_requests(demo):
    from microadjust_cms.rendering.fragment_cache import cached_personalized_value

    home = demo["home"]
    cached, first = cached_personalized_value(home, "mobile-banner")
    assert cached and first.block_id == "mobile-banner"
    first["variants"][0]["content"]["text"] = "changed in one request"  # converts in place
    first.raw_variants.clear()
    _, second = cached_personalized_value(home, "mobile-banner")
    assert second is not first and second.raw_variants
    assert second["variants"][0]["content"]["text"].startswith("Get the app")
    assert cached_personalized_value(home, "no-such-block") == (True, None)


def test_restrictions_on_an_ancestor_or_an_alias_source_apply(client, demo):
    from wagtail.models import PageViewRestriction

    home, article = demo["home"], demo["article"]
    alias = article.create_alias(parent=home, update_slug="article-alias")
    assert fragment(client, article, "loyal-readers-section").status_code == 200
    assert fragment(client, alias, "loyal-readers-section").status_code == 200
    source = PageViewRestriction.objects.create(page=article, restriction_type="password",
                                                password="s3cret")
    assert fragment(client, alias, "loyal-readers-section").json()["error"] == "restricted"
    source.delete()
    PageViewRestriction.objects.create(page=home, restriction_type="login")
    response = fragment(client, article, "loyal-readers-section")
    assert response.status_code == 403 and response.json()["error"] == "restricted"


def test_too_many_query_parameters_are_a_400_problem(client, demo):
    """Django refuses more than DATA_UPLOAD_MAX_NUMBER_FIELDS with its own HTML page."""
    query = "&".join(f"x{i}=1" for i in range(1100)) + f"&page={demo['home'].pk}&block=mobile-banner"
    response = client.get(f"{URL}?{query}")
    assert response.status_code == 400 and response.json()["error"] == "bad_request"
