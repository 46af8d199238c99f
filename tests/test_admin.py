"""Admin side: the Segment snippet, the editor's catalogue and system checks."""

import json

import pytest
from django.core.checks import run_checks

from microadjust_cms.segments.models import Segment

pytestmark = pytest.mark.django_db
ADD_URL = "/admin/snippets/microadjust_cms/segment/add/"


def post_segment(client, condition, slug="mobile-fans"):
    return client.post(ADD_URL, {"name": "Mobile fans", "slug": slug, "description": "",
                                 "condition": json.dumps(condition)})


def test_segment_add_form_renders_the_structured_editor(admin_client):
    response = admin_client.get(ADD_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-controller="ma-condition"' in html
    assert "condition-editor.js" in html
    assert 'data-ma-condition-catalogue-url-value="/admin/microadjust/signals.json"' in html


def test_valid_segment_is_saved(admin_client):
    condition = {"all": [{"signal": "device", "op": "eq", "value": "mobile"},
                         {"signal": "visit_count", "op": "gte", "value": 2}]}
    response = post_segment(admin_client, condition)
    assert response.status_code == 302
    assert Segment.objects.get(slug="mobile-fans").condition == condition


@pytest.mark.parametrize("condition, message", [
    ({"all": [{"signal": "device", "op": "eq", "value": "mobile"},
              {"signal": "visit_count", "op": "gte", "value": "two"}]},
     "Rule 2 (visit_count ≥ &quot;two&quot;): value must be a whole number"),
    ({"signal": "shoe_size", "op": "eq", "value": 1}, "unknown signal"),
    ({}, "Add at least one rule."),
])
def test_invalid_segment_is_a_form_error_and_nothing_is_saved(admin_client, condition, message):
    response = post_segment(admin_client, condition)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Segment.objects.exists()


def test_garbage_condition_is_a_form_error(admin_client):
    response = admin_client.post(ADD_URL, {"name": "X", "slug": "x", "condition": "{not json"})
    assert response.status_code == 200
    assert "could not be read" in response.content.decode()
    assert not Segment.objects.exists()


def test_segment_cycles_are_rejected(admin_client):
    Segment.objects.create(name="A", slug="a", condition={
        "signal": "device", "op": "eq", "value": "mobile"})
    assert post_segment(admin_client, {"signal": "segment", "op": "contains", "value": "a"},
                        slug="b").status_code == 302
    a = Segment.objects.get(slug="a")
    response = admin_client.post(f"/admin/snippets/microadjust_cms/segment/edit/{a.pk}/", {
        "name": "A", "slug": "a", "description": "",
        "condition": json.dumps({"signal": "segment", "op": "contains", "value": "b"})})
    assert response.status_code == 200
    assert "refers to itself" in response.content.decode()
    a.refresh_from_db()
    assert a.condition == {"signal": "device", "op": "eq", "value": "mobile"}


def test_signal_catalogue_is_admin_only_and_describes_signals(client, admin_client):
    Segment.objects.create(name="Loyal", slug="loyal", condition={
        "signal": "visit_count", "op": "gte", "value": 3})
    assert client.get("/admin/microadjust/signals.json").status_code == 302
    data = admin_client.get("/admin/microadjust/signals.json").json()
    signals = {s["name"]: s for s in data["signals"]}
    assert {"device", "is_authenticated", "user_group", "language", "referrer_domain",
            "utm_source", "utm_medium", "utm_campaign", "query_param", "time_of_day",
            "day_of_week", "visit_count", "is_returning", "session_pageviews", "page_views",
            "segment"} <= set(signals)
    assert signals["device"]["choices"][0] == ["mobile", "Mobile"]
    assert signals["visit_count"]["type"] == "integer"
    assert "between" in signals["visit_count"]["operators"]
    assert signals["query_param"]["param"] == "Parameter name"
    assert signals["segment"]["choices"] == [["loyal", "Loyal"]]
    assert signals["newsletter_subscriber"]["type"] == "boolean"  # the demo's hook
    assert data["operators"]["gte"] == "≥"


def test_page_editor_rejects_an_invalid_variant_condition(demo, admin_client):
    """Saving a page whose personalized block has a bad rule is a form error naming it."""
    from wagtail.test.utils.form_data import nested_form_data, streamfield

    home = demo["home"]
    body = streamfield([("personalized_card", {
        "block_id": "abc",
        "variants": {"count": 1, "0-deleted": "", "0-order": "0", "0-id": "",
                     "0-value-name": "v", "0-value-segment": "",
                     "0-value-condition": json.dumps({"signal": "visit_count", "op": "gte",
                                                      "value": "lots"}),
                     "0-value-content-title": "T", "0-value-content-text": "",
                     "0-value-content-link_label": "", "0-value-content-link_url": ""},
        "default": {"title": "D", "text": "", "link_label": "", "link_url": ""},
    })])
    data = nested_form_data({"title": "Home", "slug": "home-demo", "body": body})
    response = admin_client.post(f"/admin/pages/{home.pk}/edit/", data)
    assert response.status_code == 200
    error = response.context["form"].errors.as_data()["body"][0]
    messages = error.as_json_data()["blockErrors"][0]["blockErrors"]["variants"]["blockErrors"][0]
    assert messages["blockErrors"]["condition"]["messages"] == [
        'Rule 1 (visit_count ≥ "lots"): value must be a whole number']
    home.refresh_from_db()
    assert home.body[0].block_type == "personalized_banner"  # unchanged


def test_variant_without_segment_or_rules_is_rejected(demo):
    from django.core.exceptions import ValidationError

    from project.demo.models import HomePage

    block = HomePage.body.field.stream_block.child_blocks["personalized_card"]
    value = block.to_python({"block_id": "x", "default": {"title": "D"}, "variants": [
        {"name": "everyone", "segment": "", "condition": {}, "content": {"title": "T"}}]})
    with pytest.raises(ValidationError):
        block.clean(value)


def test_duplicate_variant_names_are_rejected(demo):
    from django.core.exceptions import ValidationError

    from project.demo.models import HomePage

    block = HomePage.body.field.stream_block.child_blocks["personalized_card"]
    rule = {"signal": "device", "op": "eq", "value": "mobile"}
    value = block.to_python({"block_id": "x", "default": {"title": "D"}, "variants": [
        {"name": "a", "segment": "", "condition": rule, "content": {"title": "T"}},
        {"name": "a", "segment": "", "condition": rule, "content": {"title": "U"}}]})
    with pytest.raises(ValidationError):
        block.clean(value)


def test_system_checks(settings):
    assert not [m for m in run_checks() if m.id.startswith("microadjust_cms")]
    settings.MIDDLEWARE = ["microadjust_cms.visitor.middleware.VisitorContextMiddleware",
                           "django.contrib.sessions.middleware.SessionMiddleware"]
    settings.MICROADJUST_PROFILE_STORE = "microadjust_cms.visitor.stores.redis.RedisProfileStore"
    ids = {m.id for m in run_checks()}
    assert {"microadjust_cms.E001", "microadjust_cms.E003"} <= ids
    settings.MICROADJUST_PROFILE_STORE = "nowhere.Store"
    assert "microadjust_cms.E002" in {m.id for m in run_checks()}
    settings.MIDDLEWARE = []
    assert "microadjust_cms.W001" in {m.id for m in run_checks()}
    settings.MICROADJUST_COLLECT_RATE = "lots"
    settings.MICROADJUST_EVENT_RETENTION_DAYS = 0
    assert {"microadjust_cms.E005", "microadjust_cms.E006"} <= {m.id for m in run_checks()}


@pytest.mark.parametrize(("name", "value", "check"), [
    ("MICROADJUST_CLUSTER_K_RANGE", (1, 5), "microadjust_cms.E007"),
    ("MICROADJUST_CLUSTER_K_RANGE", (6, 3), "microadjust_cms.E007"),
    ("MICROADJUST_CLUSTER_K_RANGE", "2-8", "microadjust_cms.E007"),
    ("MICROADJUST_CLUSTER_METHOD", "spectral", "microadjust_cms.E008"),
])
def test_clustering_settings_are_checked(settings, name, value, check):
    setattr(settings, name, value)
    assert check in {m.id for m in run_checks()}


def test_clustering_needs_wagtail_settings_for_editors(monkeypatch):
    from django.conf import settings as django_settings

    assert "microadjust_cms.W003" not in {m.id for m in run_checks()}
    # Set without the setting_changed signal: reloading the app registry is not what is tested.
    monkeypatch.setattr(django_settings, "INSTALLED_APPS",
                        [a for a in django_settings.INSTALLED_APPS if a != "wagtail.contrib.settings"])
    assert "microadjust_cms.W003" in {m.id for m in run_checks()}


def test_missing_urls_are_a_warning(settings):
    settings.ROOT_URLCONF = "tests.urls_without_microadjust"
    messages = [m for m in run_checks() if m.id == "microadjust_cms.W002"]
    assert messages and "include(\"microadjust_cms.urls\")" in messages[0].hint


def test_invalid_rule_is_the_only_segment_error(admin_client):
    response = post_segment(admin_client, {"signal": "visit_count", "op": "gte"})
    html = response.content.decode()
    assert "Rule 1 (visit_count" in html
    assert "Add at least one rule." not in html


def test_condition_block_form_state_is_json_once(demo):
    from project.demo.models import HomePage

    variant = HomePage.body.field.stream_block.child_blocks["personalized_card"].child_blocks[
        "variants"].child_block
    condition_block = variant.child_blocks["condition"]
    rule = {"signal": "device", "op": "eq", "value": "mobile"}
    assert json.loads(condition_block.get_form_state(rule)) == rule
    assert condition_block.get_form_state({}) == ""


def test_repeated_block_ids_are_renewed_when_a_revision_is_saved(demo):
    from project.demo.models import HomePage

    home = HomePage.objects.get()
    raw = list(home.body.raw_data)
    banner = next(child for child in raw if child["type"] == "personalized_banner")
    copy = json.loads(json.dumps(banner))
    copy["id"] = "copied"
    home.body = raw + [copy]
    home.save_revision().publish()
    home = HomePage.objects.get()
    ids = [child.value.block_id for child in home.body if child.block_type.startswith("personalized")]
    assert len(ids) == len(set(ids))
    assert ids.count("mobile-banner") == 1  # the first keeps its id


def test_saved_blocks_carry_a_rules_revision_that_follows_their_conditions(demo, client):
    """Pages saved through the blocks store ``rules_rev``; decisions follow an edited rule."""
    from microadjust_cms.rendering.block_ids import as_saved
    from project.demo.models import HomePage

    from .conftest import MOBILE_UA
    from .helpers import variants

    home = HomePage.objects.get()
    banner = next(c for c in home.body.raw_data if c["type"] == "personalized_banner")
    first_revision = banner["value"]["rules_rev"]
    assert len(first_revision) == 16
    assert variants(client.get("/", HTTP_USER_AGENT=MOBILE_UA))["mobile-banner"] == "mobile"

    raw = json.loads(json.dumps(list(home.body.raw_data)))
    edited = next(c for c in raw if c["type"] == "personalized_banner")
    edited["value"]["variants"][0]["condition"] = {
        "signal": "device", "op": "eq", "value": "tablet"}
    home.body = as_saved(HomePage.body.field, raw)
    home.save_revision().publish()
    stored = next(c for c in HomePage.objects.get().body.raw_data
                  if c["type"] == "personalized_banner")
    assert stored["value"]["rules_rev"] != first_revision
    assert variants(client.get("/", HTTP_USER_AGENT=MOBILE_UA))["mobile-banner"] == "default"


def test_blocks_stored_without_a_revision_still_follow_edits(demo, client):
    """Raw data written around the blocks (no ``rules_rev``) is compared, never trusted."""
    from project.demo.models import HomePage

    from .conftest import MOBILE_UA
    from .helpers import variants

    home = HomePage.objects.get()
    raw = json.loads(json.dumps(list(home.body.raw_data)))
    banner = next(c for c in raw if c["type"] == "personalized_banner")
    del banner["value"]["rules_rev"]
    HomePage.objects.filter(pk=home.pk).update(body=raw)
    assert variants(client.get("/", HTTP_USER_AGENT=MOBILE_UA))["mobile-banner"] == "mobile"
    banner["value"]["variants"][0]["condition"] = {
        "signal": "device", "op": "eq", "value": "tablet"}
    HomePage.objects.filter(pk=home.pk).update(body=raw)
    assert variants(client.get("/", HTTP_USER_AGENT=MOBILE_UA))["mobile-banner"] == "default"


def test_variants_are_stored_compact_and_keep_their_ids(demo, client):
    """Variants are stored flat (no ListBlock item wrapper, empty segment or condition left
    out); their list ids survive a load and save, and the older item format still reads."""
    from microadjust_cms.rendering.block_ids import as_saved
    from project.demo.models import HomePage

    from .conftest import MOBILE_UA
    from .helpers import variants

    home = HomePage.objects.get()
    banner = next(c for c in home.body.raw_data if c["type"] == "personalized_banner")
    stored = banner["value"]["variants"][0]
    assert set(stored) == {"name", "condition", "content", "id"}  # no "segment": it is empty
    ids = [v["id"] for v in banner["value"]["variants"]]

    child = next(c for c in home.body if c.block_type == "personalized_banner")
    assert [item.id for item in child.value["variants"].bound_blocks] == ids
    assert child.value["variants"][0]["segment"] == ""

    raw = json.loads(json.dumps(list(home.body.raw_data)))
    home.body = as_saved(HomePage.body.field, raw)
    home.save_revision().publish()
    again = next(c for c in HomePage.objects.get().body.raw_data
                 if c["type"] == "personalized_banner")
    assert [v["id"] for v in again["value"]["variants"]] == ids

    # The ListBlock item format written before compact storage still renders and edits.
    old = json.loads(json.dumps(list(home.body.raw_data)))
    legacy = next(c for c in old if c["type"] == "personalized_banner")
    legacy["value"]["variants"] = [
        {"type": "item", "id": v.pop("id"), "value": {"segment": "", **v}}
        for v in legacy["value"]["variants"]]
    del legacy["value"]["rules_rev"]
    HomePage.objects.filter(pk=home.pk).update(body=old)
    assert variants(client.get("/", HTTP_USER_AGENT=MOBILE_UA))["mobile-banner"] == "mobile"
    child = next(c for c in HomePage.objects.get().body if c.block_type == "personalized_banner")
    assert [item.id for item in child.value["variants"].bound_blocks] == ids


def test_page_editor_loads_the_condition_editor_assets_once(demo, admin_client):
    """The widget's media brings the editor's script and styles into StreamField forms."""
    html = admin_client.get(f"/admin/pages/{demo['home'].pk}/edit/").content.decode()
    assert html.count("microadjust_cms/js/condition-editor.js") == 1
    assert html.count("microadjust_cms/css/condition-editor.css") == 1


def _card_with_triggers(triggers: dict) -> list:
    from wagtail.test.utils.form_data import streamfield

    return streamfield([("personalized_card", {
        "block_id": "trig",
        "variants": {"count": 1, "0-deleted": "", "0-order": "0", "0-id": "",
                     "0-value-name": "lighter", "0-value-segment": "",
                     "0-value-condition": json.dumps({"signal": "abandoned", "op": "eq",
                                                      "value": True, "param": "this"}),
                     "0-value-content-title": "Lighter", "0-value-content-text": "",
                     "0-value-content-link_label": "", "0-value-content-link_url": ""},
        "default": {"title": "D", "text": "", "link_label": "", "link_url": ""},
        "triggers": {"on_abandon": "", "abandon_variant": "", "reveal_after": "",
                     "reveal_variant": "", **triggers},
    })])


def test_page_editor_saves_trigger_settings_and_names_a_bad_one(demo, admin_client):
    from wagtail.test.utils.form_data import nested_form_data

    home = demo["home"]
    url = f"/admin/pages/{home.pk}/edit/"
    bad = nested_form_data({"title": "Home", "slug": "home-demo", "body": _card_with_triggers(
        {"on_abandon": "variant", "abandon_variant": "heavier"})})
    response = admin_client.post(url, bad)
    assert response.status_code == 200
    error = response.context["form"].errors.as_data()["body"][0].as_json_data()
    triggers = error["blockErrors"][0]["blockErrors"]["triggers"]["blockErrors"]
    assert triggers["abandon_variant"]["messages"] == [
        "No variant named heavier in this block (variants: default, lighter)."]

    good = nested_form_data({"title": "Home", "slug": "home-demo", "action-publish": "1",
                             "body": _card_with_triggers({"on_abandon": "variant",
                                                          "abandon_variant": "lighter",
                                                          "reveal_after": "20"})})
    assert admin_client.post(url, good).status_code == 302
    home.refresh_from_db()
    stored = home.body.raw_data[0]["value"]
    assert stored["triggers"] == {"on_abandon": "variant", "abandon_variant": "lighter",
                                  "reveal_after": 20, "reveal_variant": ""}
