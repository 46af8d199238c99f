"""The structured condition editor in a real browser: Segment snippets and personalized blocks.

Every test drives the admin UI the way an editor does (no JSON typing) and then checks what
the server stored or rendered.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

if not os.environ.get("CI"):  # in CI a missing playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api",
                        reason="playwright is not installed: pip install -e '.[test]'")
from playwright.sync_api import Locator, Page, expect  # noqa: E402

from microadjust_cms.segments.models import Segment
from tests.conftest import DESKTOP_UA, MOBILE_UA  # noqa: E402

pytestmark = pytest.mark.browser

SEGMENT_ADD_URL = "/admin/snippets/microadjust_cms/segment/add/"
SEGMENT_EDIT_URL = "/admin/snippets/microadjust_cms/segment/edit/{pk}/"
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / \
    "condition-editor.png"


# -- helpers: the editor's structure (stable class names, see condition-editor.js) ---------------

def root_group(scope: Page | Locator) -> Locator:
    return scope.locator(".ma-group--root")


def items(group: Locator) -> Locator:
    return group.locator(":scope > .ma-group__items")


def group_mode(group: Locator) -> Locator:
    """The group's own "Match all of / any of" select (not a nested group's)."""
    return group.locator(":scope > .ma-group__header .ma-group__mode")


def group_negate(group: Locator) -> Locator:
    return group.locator(":scope > .ma-group__header .ma-group__negate input")


def own_rules(group: Locator) -> Locator:
    return items(group).locator(":scope > .ma-rule")


def own_groups(group: Locator) -> Locator:
    return items(group).locator(":scope > .ma-group")


def add_rule(group: Locator) -> Locator:
    rules = own_rules(group)
    before = rules.count()
    group.locator(":scope > .ma-group__actions > .ma-add-rule").click()
    expect(rules).to_have_count(before + 1)
    return rules.nth(before)


def add_group(group: Locator) -> Locator:
    groups = own_groups(group)
    before = groups.count()
    group.locator(":scope > .ma-group__actions > .ma-add-group").click()
    expect(groups).to_have_count(before + 1)
    return groups.nth(before)


def set_rule(rule: Locator, signal: str, op: str, value: str | None = None) -> None:
    """Pick a signal and an operator by their labels; a value is typed or picked by label."""
    rule.locator(".ma-rule__signal").select_option(label=signal)
    # Changing the signal rebuilds the row; the locator finds the new one.
    rule.locator(".ma-rule__op").select_option(label=op)
    if value is None:
        return
    field = rule.locator(".ma-rule__value")
    if field.evaluate("el => el.tagName") == "SELECT":
        field.select_option(label=value)
    else:
        field.fill(value)


def expect_rule(rule: Locator, signal: str, op: str, value: str) -> None:
    expect(rule.locator(".ma-rule__signal")).to_have_value(signal)
    expect(rule.locator(".ma-rule__op")).to_have_value(op)
    expect(rule.locator(".ma-rule__value")).to_have_value(value)


def stored_json(editor: Locator):
    """What the editor wrote into the form field (the hidden textarea)."""
    text = editor.locator("textarea").input_value()
    return json.loads(text) if text else None


def click_save(page: Page) -> None:
    page.get_by_role("button", name="Save", exact=True).click()


# -- Segment snippet ----------------------------------------------------------------------------

def test_segment_condition_built_in_the_editor_is_saved_and_rebuilt(admin_page: Page):
    page = admin_page
    page.goto(SEGMENT_ADD_URL)
    page.locator("#id_name").fill("Mobile regulars")
    page.locator("#id_slug").fill("mobile-regulars")

    editor = page.locator(".ma-condition")
    root = root_group(editor)
    expect(root.locator(".ma-group__mode")).to_have_value("all")
    expect(own_rules(root)).to_have_count(0)
    assert stored_json(editor) in (None, {})  # the model default, {}, renders as "{}"

    set_rule(add_rule(root), "Visit count", "≥", "3")
    nested = add_group(root)
    nested.locator(".ma-group__mode").select_option(label="Match any of")
    set_rule(own_rules(nested).first, "Device", "is", "Mobile")
    set_rule(add_rule(nested), "Device", "is", "Tablet")

    expected = {"all": [
        {"signal": "visit_count", "op": "gte", "value": 3},
        {"any": [
            {"signal": "device", "op": "eq", "value": "mobile"},
            {"signal": "device", "op": "eq", "value": "tablet"},
        ]},
    ]}
    assert stored_json(editor) == expected
    click_save(page)
    expect(page.locator(".messages .success")).to_contain_text("Mobile regulars")

    segment = Segment.objects.get(slug="mobile-regulars")
    assert segment.condition == expected

    # The edit view rebuilds the same tree from the stored JSON.
    page.goto(SEGMENT_EDIT_URL.format(pk=segment.pk))
    root = root_group(page)
    expect(group_mode(root)).to_have_value("all")
    expect(own_rules(root)).to_have_count(1)
    expect_rule(own_rules(root).first, "visit_count", "gte", "3")
    expect(own_groups(root)).to_have_count(1)
    nested = own_groups(root).first
    expect(group_mode(nested)).to_have_value("any")
    expect(own_rules(nested)).to_have_count(2)
    expect_rule(own_rules(nested).nth(0), "device", "eq", "mobile")
    expect_rule(own_rules(nested).nth(1), "device", "eq", "tablet")

    # Removing a rule in the UI and saving again changes the stored condition.
    own_rules(nested).nth(1).locator(".ma-remove").click()
    expect(own_rules(nested)).to_have_count(1)
    click_save(page)
    expect(page.locator(".messages .success")).to_contain_text("updated")
    segment.refresh_from_db()
    assert segment.condition == {"all": [
        {"signal": "visit_count", "op": "gte", "value": 3},
        {"any": [{"signal": "device", "op": "eq", "value": "mobile"}]},
    ]}


def test_every_kind_of_value_round_trips(admin_page: Page):
    """Between (two inputs), choices lists (checkboxes), a parameter, a boolean, 'is set'
    (no value) and a negated 'any' group: typed JSON out, the same UI back in."""
    page = admin_page
    page.goto(SEGMENT_ADD_URL)
    page.locator("#id_name").fill("Weekend promo")
    page.locator("#id_slug").fill("weekend-promo")
    root = root_group(page)
    group_negate(root).check()
    group_mode(root).select_option("any")

    hour = add_rule(root)
    set_rule(hour, "Hour of day", "is between")
    expect(hour.locator(".ma-rule__value")).to_have_count(2)
    hour.get_by_label("Low value").fill("9")
    hour.get_by_label("High value").fill("17")
    day = add_rule(root)
    set_rule(day, "Day of week", "is one of")
    day.get_by_label("Saturday").check()
    day.get_by_label("Sunday").check()
    promo = add_rule(root)
    set_rule(promo, "Query parameter", "is", "spring")
    promo.locator(".ma-rule__param").fill("promo")
    set_rule(add_rule(root), "Returning visitor", "is", "No")
    utm = add_rule(root)
    set_rule(utm, "UTM source", "is set")
    expect(utm.locator(".ma-rule__value")).to_have_count(0)

    expected = {"not": {"any": [
        {"signal": "hour", "op": "between", "value": [9, 17]},
        {"signal": "day_of_week", "op": "in", "value": ["saturday", "sunday"]},
        {"signal": "query_param", "op": "eq", "value": "spring", "param": "promo"},
        {"signal": "is_returning", "op": "eq", "value": False},
        {"signal": "utm_source", "op": "exists"},
    ]}}
    assert stored_json(page.locator(".ma-condition")) == expected
    click_save(page)
    expect(page.locator(".messages .success")).to_contain_text("Weekend promo")
    segment = Segment.objects.get(slug="weekend-promo")
    assert segment.condition == expected

    page.goto(SEGMENT_EDIT_URL.format(pk=segment.pk))
    root = root_group(page)
    expect(group_negate(root)).to_be_checked()
    expect(group_mode(root)).to_have_value("any")
    rules = own_rules(root)
    expect(rules).to_have_count(5)
    expect(rules.nth(0).locator(".ma-rule__value").nth(0)).to_have_value("9")
    expect(rules.nth(0).locator(".ma-rule__value").nth(1)).to_have_value("17")
    expect(rules.nth(1).get_by_label("Saturday")).to_be_checked()
    expect(rules.nth(1).get_by_label("Sunday")).to_be_checked()
    expect(rules.nth(1).get_by_label("Monday")).not_to_be_checked()
    expect(rules.nth(2).locator(".ma-rule__param")).to_have_value("promo")
    expect_rule(rules.nth(2), "query_param", "eq", "spring")
    expect_rule(rules.nth(3), "is_returning", "eq", "false")
    expect(rules.nth(4).locator(".ma-rule__op")).to_have_value("exists")
    # Opening the form rewrites nothing: the stored JSON is left as it was.
    assert stored_json(page.locator(".ma-condition")) == expected


def test_rule_without_a_value_is_a_form_error_naming_the_rule(admin_page: Page):
    page = admin_page
    page.goto(SEGMENT_ADD_URL)
    page.locator("#id_name").fill("Incomplete")
    page.locator("#id_slug").fill("incomplete")
    root = root_group(page)
    set_rule(add_rule(root), "Visit count", "≥")  # no value typed
    assert stored_json(page.locator(".ma-condition")) == {
        "all": [{"signal": "visit_count", "op": "gte"}]}

    click_save(page)
    error = page.locator("[data-contentpath='condition'] .error-message, "
                         "#panel-child-condition-section .error-message")
    expect(error.first).to_contain_text("Rule 1")
    expect(error.first).to_contain_text("visit_count")
    assert not Segment.objects.exists()
    # The form comes back with the editor rebuilt from what was submitted.
    expect(own_rules(root_group(page))).to_have_count(1)
    expect(own_rules(root_group(page)).first.locator(".ma-rule__signal")).to_have_value(
        "visit_count")


# -- a personalized block in the page editor ----------------------------------------------------

@pytest.fixture
def home(site_db):
    call_command("load_demo", stdout=open(os.devnull, "w"))
    from project.demo.models import HomePage

    return HomePage.objects.get()


def test_personalized_block_condition_is_built_published_and_served(admin_page: Page, home,
                                                                   artifacts: Path):
    from project.demo.models import HomePage

    page = admin_page
    page.goto(f"/admin/pages/add/demo/homepage/{home.pk}/")
    page.locator("#id_title").fill("Offers")

    page.get_by_role("button", name="Insert a block").first.click()
    page.get_by_role("option", name="Personalized card").click()
    block = page.locator("[data-contentpath='body'] .ma-personalized").first
    expect(block).to_be_visible()
    # The automatic block id never shows.
    expect(block.locator("[data-contentpath='block_id']")).to_be_hidden()

    page.locator("#body-0-value-default-title").fill("Welcome, desktop and everybody")
    # A new personalized block starts with one (empty) variant.
    variant = block.locator(".ma-variant").first
    variant.locator("#body-0-value-variants-0-value-name").fill("mobile")
    editor = variant.locator("[data-contentpath='condition'] .ma-condition")
    set_rule(add_rule(root_group(editor)), "Device", "is", "Mobile")
    page.locator("#body-0-value-variants-0-value-content-title").fill("Hello, phone reader")

    expected_condition = {"all": [{"signal": "device", "op": "eq", "value": "mobile"}]}
    assert stored_json(editor) == expected_condition

    # A picture for humans (test-artifacts/ is gitignored); MICROADJUST_UPDATE_SCREENSHOTS=1
    # also refreshes the README's copy in docs/screenshots/.
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.mouse.move(0, 0)
    shot = artifacts / "condition-editor.png"
    variant.screenshot(path=str(shot), style=".ma-variant { padding: 12px 16px; } "
                                             "footer { visibility: hidden !important; }")
    if os.environ.get("MICROADJUST_UPDATE_SCREENSHOTS"):
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)

    page.get_by_role("button", name="More actions").click()
    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".messages .success")).to_contain_text("Offers")

    offers = HomePage.objects.get(slug="offers")
    assert offers.live
    (stream_child,) = offers.body
    assert stream_child.block_type == "personalized_card"
    raw = stream_child.get_prep_value()["value"]
    assert raw["block_id"], "the block id is filled in automatically"
    assert raw["default"]["title"] == "Welcome, desktop and everybody"
    variants = raw["variants"]  # stored compact: each variant's fields and its list id
    assert [v["name"] for v in variants] == ["mobile"]
    assert variants[0]["id"]
    mobile = variants[0]
    assert mobile["condition"] == expected_condition
    assert mobile["content"]["title"] == "Hello, phone reader"

    url = offers.get_url()
    phone = Client(HTTP_USER_AGENT=MOBILE_UA).get(url)
    desktop = Client(HTTP_USER_AGENT=DESKTOP_UA).get(url)
    assert phone.status_code == desktop.status_code == 200
    assert "Hello, phone reader" in phone.content.decode()
    assert "Welcome, desktop and everybody" not in phone.content.decode()
    assert "Welcome, desktop and everybody" in desktop.content.decode()
    assert "Hello, phone reader" not in desktop.content.decode()
