"""Triggers in Debian's chromium: an abandoned block and a timed reveal are swapped in place
through the fragment API, at most TRIGGER_FREQUENCY_CAP times a page view."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from microadjust_cms.rendering.block_ids import as_saved
from microadjust_cms.tracking.models import Event

from .test_tracker import FILLER, card, leave, wait_for

pytestmark = pytest.mark.browser


def personalized_card(block_id: str, variants: list, triggers: dict) -> dict:
    return {"type": "personalized_card", "value": {
        "block_id": block_id, "default": card(f"{block_id} default"), "triggers": triggers,
        "variants": [{"name": name, "condition": condition, "content": card(f"{block_id} {name}")}
                     for name, condition in variants]}}


def publish(body: list, slug: str):
    from wagtail.models import Site

    from project.demo.models import HomePage

    root = Site.objects.get(is_default_site=True).root_page
    page = HomePage(title=slug, slug=slug, body=as_saved(HomePage.body.field, body))
    root.add_child(instance=page)
    page.save_revision().publish()
    return page


def variant_of(page: Page, block_id: str) -> str | None:
    return page.evaluate(
        f"() => document.querySelector('[data-ma-block=\"{block_id}\"]').dataset.maVariant")


@pytest.fixture
def abandon_page(site_db, settings):
    """A card that, once abandoned, has a variant for visitors who abandoned it."""
    settings.MICROADJUST_TRACKER_ABANDON_DWELL_MS = 60_000
    settings.MICROADJUST_TRACKER_FLUSH_MS = 60_000  # only the trigger's own flush sends
    return publish([
        personalized_card("offer", [
            ("second-chance", {"signal": "abandoned", "op": "eq", "value": True, "param": "this"}),
        ], {"on_abandon": "best"}),
        {"type": "paragraph", "value": FILLER * 4},  # tall enough to scroll the card away
    ], "abandon")


def test_an_abandoned_block_is_swapped_for_the_best_other_match(abandon_page, page: Page):
    swaps = []
    page.on("request", lambda r: swaps.append(r.url) if "/api/fragment/" in r.url else None)
    page.goto(abandon_page.url)
    assert variant_of(page, "offer") == "default"
    page.wait_for_timeout(1200)  # an impression first
    for _ in range(12):
        page.mouse.wheel(0, 500)
        page.wait_for_timeout(50)
    # The abandon event reaches the profile before the fragment API decides: the variant whose
    # condition is "abandoned this block" now matches, and replaces the block in place.
    assert wait_for(page, lambda: variant_of(page, "offer") == "second-chance")
    swapped = page.locator('[data-ma-block="offer"]')
    assert swapped.get_attribute("data-ma-swapped") == "abandon"
    assert "offer second-chance" in swapped.inner_text()
    assert len(swaps) == 1 and "reason=abandon" in swaps[0] and "exclude=default" in swaps[0]
    assert Event.objects.filter(type="abandon", block_id="offer").count() == 1
    leave(page)


@pytest.fixture
def reveal_page(site_db, settings):
    """Three blocks that each reveal a named variant after a second: the cap allows two."""
    settings.MICROADJUST_TRIGGER_FREQUENCY_CAP = 2
    body = [personalized_card(f"reveal-{n}", [("late", {"signal": "device", "op": "eq",
                                                       "value": "bot"})],
                              {"reveal_after": 1, "reveal_variant": "late"})
            for n in range(3)]
    return publish(body, "reveal")


def test_timed_reveal_shows_the_named_variant_up_to_the_frequency_cap(reveal_page, page: Page):
    page.goto(reveal_page.url)
    assert [variant_of(page, f"reveal-{n}") for n in range(3)] == ["default"] * 3

    def revealed():
        return [variant_of(page, f"reveal-{n}") for n in range(3)].count("late")

    # The named variant is shown although its condition (a bot) does not match: the editor
    # asked for it. The third block stays: two swaps a page view.
    assert wait_for(page, lambda: revealed() == 2)
    page.wait_for_timeout(1500)
    assert revealed() == 2
    assert page.locator('[data-ma-swapped="timer"]').count() == 2
    leave(page)
