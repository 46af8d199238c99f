"""tracker.js in Debian's chromium: what a visitor does ends up as events in the database."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page

from microadjust_cms.rendering.block_ids import as_saved
from microadjust_cms.tracking.models import Event

pytestmark = pytest.mark.browser

FILLER = "<p>" + "Long read. " * 400 + "</p>"


def card(title: str) -> dict:
    return {"title": title, "text": "Some text.", "link_label": f"Open {title}", "link_url": "#"}


@pytest.fixture
def long_page(site_db, settings):
    """A tall page: three personalized cards far apart, so one can be scrolled past."""
    from wagtail.models import Site

    from project.demo.models import HomePage

    settings.MICROADJUST_TRACKER_ABANDON_DWELL_MS = 60_000  # a quick scroll past abandons
    settings.MICROADJUST_TRACKER_FLUSH_MS = 500
    body = []
    for name in ("first", "second", "third"):
        body.append({"type": "personalized_card", "value": {
            "block_id": f"{name}-card", "variants": [], "default": card(name)}})
        body.append({"type": "paragraph", "value": FILLER})
    root = Site.objects.get(is_default_site=True).root_page
    page = HomePage(title="Long", slug="long", body=as_saved(HomePage.body.field, body))
    root.add_child(instance=page)
    page.save_revision().publish()
    return page


def wait_for(page: Page, predicate, timeout=10.0):
    """Poll while letting Playwright run (route handlers and events need its loop)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        page.wait_for_timeout(100)
    return predicate()


def leave(page: Page) -> None:
    """Stop the tracker (its pagehide beacon is the last request) before the database is
    flushed for the next test: the live server must not write while it is."""
    page.goto("about:blank")
    page.wait_for_timeout(500)


def collect_requests(page: Page) -> list:
    sent = []
    page.on("request", lambda r: sent.append(r) if "/microadjust/collect/" in r.url else None)
    return sent


def test_scrolling_records_pageview_impressions_scroll_dwell_and_abandon(long_page, page: Page):
    page.goto(long_page.url)
    page.wait_for_timeout(1200)  # the first card: half visible for more than 750 ms
    for _ in range(30):
        page.mouse.wheel(0, 600)
        page.wait_for_timeout(60)
    page.wait_for_timeout(1200)
    page.goto("/")  # pagehide sends the rest with sendBeacon

    assert wait_for(page, lambda: Event.objects.filter(type="scroll", value=100).exists())
    assert wait_for(page, lambda: Event.objects.filter(type="abandon").exists())
    events = list(Event.objects.filter(path=long_page.url))
    kinds = {e.type for e in events}
    assert {"pageview", "impression", "scroll", "dwell", "abandon"} <= kinds, kinds
    assert {e.value for e in events if e.type == "scroll"} == {25, 50, 75, 90, 100}
    impressions = {e.block_id for e in events if e.type == "impression"}
    assert "first-card" in impressions
    first_dwell = sum(e.value for e in events if e.type == "dwell" and e.block_id == "first-card")
    assert 700 <= first_dwell < 60_000
    abandoned = [e for e in events if e.type == "abandon"]
    assert "first-card" in {e.block_id for e in abandoned}
    assert all(e.variant == "default" and e.page_id == long_page.pk for e in abandoned)
    assert len({e.visitor_id for e in events}) == 1  # the cookie the first batch was given
    leave(page)


def test_clicks_and_goals_are_recorded(long_page, page: Page):
    page.goto(long_page.url)
    page.evaluate("""() => {
        const block = document.querySelector('[data-ma-block="first-card"] article');
        const goal = document.createElement('a');
        goal.href = '#signed-up'; goal.textContent = 'Sign up'; goal.dataset.maGoal = 'newsletter-signup';
        block.appendChild(goal);
    }""")
    page.get_by_role("link", name="Open first").click()
    page.get_by_role("link", name="Sign up").click()
    page.evaluate("() => { microadjust.goal('video-play'); microadjust.flush(); }")
    assert wait_for(page, lambda: Event.objects.filter(type="conversion").count() == 2)
    clicks = Event.objects.filter(type="click", block_id="first-card")
    assert {c.name for c in clicks} == {"Open first", "Sign up"}
    goals = {c.name: c.block_id for c in Event.objects.filter(type="conversion")}
    assert goals == {"newsletter-signup": "first-card", "video-play": ""}
    leave(page)


@pytest.mark.parametrize("how", ["DNT header", "GPC in the browser"])
def test_do_not_track_and_gpc_send_nothing(long_page, browser, live_server, how):
    if how == "DNT header":  # the server leaves the tracker out altogether
        context = browser.new_context(base_url=live_server.url, extra_http_headers={"DNT": "1"})
    else:  # no header: the script loads and must see navigator.globalPrivacyControl itself
        context = browser.new_context(base_url=live_server.url)
        context.add_init_script(
            "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})")
    page = context.new_page()
    sent = collect_requests(page)
    page.goto(long_page.url)
    has_tracker = page.evaluate("() => typeof window.microadjust !== 'undefined'")
    assert has_tracker == (how != "DNT header")
    for _ in range(20):
        page.mouse.wheel(0, 600)
        page.wait_for_timeout(50)
    if has_tracker:
        page.evaluate("() => { microadjust.goal('x'); microadjust.flush(); }")
    page.wait_for_timeout(1500)
    page.goto("/")
    leave(page)
    context.close()
    assert sent == []
    assert Event.objects.count() == 0


def test_batches_refused_with_503_are_kept_and_sent_again(long_page, page: Page):
    failing = {"on": True, "seen": 0}

    def unavailable(route):
        if failing["on"]:
            failing["seen"] += 1
            route.fulfill(status=503, headers={"Retry-After": "1"}, body='{"error":"unavailable"}')
        else:
            route.continue_()

    page.route("**/microadjust/collect/", unavailable)
    page.goto(long_page.url)
    page.evaluate("() => { microadjust.goal('kept-while-down'); microadjust.flush(); }")
    assert wait_for(page, lambda: failing["seen"] >= 1)
    page.wait_for_timeout(300)
    pending = page.evaluate("() => JSON.parse(localStorage.getItem('microadjust:pending') || '[]')")
    assert any(e.get("name") == "kept-while-down" for e in pending)
    assert Event.objects.filter(type="conversion").count() == 0

    failing["on"] = False  # the server is back: the next flush delivers the kept batch
    assert wait_for(page, lambda: Event.objects.filter(type="conversion", name="kept-while-down").exists())
    assert wait_for(page, lambda: page.evaluate("() => localStorage.getItem('microadjust:pending')") is None)
    assert Event.objects.filter(type="conversion", name="kept-while-down").count() == 1
    leave(page)


def test_a_flush_while_a_batch_is_in_flight_does_not_send_it_twice(long_page, page: Page):
    """The batch waits in localStorage until acknowledged; a second flush (the interval, a
    trigger) while it is in flight must not send it again (each copy would be stored)."""
    page.goto(long_page.url)
    page.evaluate("() => { microadjust.goal('once'); microadjust.flush(); microadjust.flush(); }")
    assert wait_for(page, lambda: Event.objects.filter(type="conversion", name="once").exists())
    page.wait_for_timeout(1200)  # the 500 ms interval flushes come and go meanwhile
    assert Event.objects.filter(type="conversion", name="once").count() == 1
    assert Event.objects.filter(type="pageview").count() == 1
    leave(page)


@pytest.fixture
def optimized_page(site_db, settings):
    """One auto-optimized card whose variant matches every desktop browser: two candidates."""
    from wagtail.models import Site

    from project.demo.models import HomePage

    settings.MICROADJUST_EXPERIMENT_HOLDOUT = 0.0
    settings.MICROADJUST_TRACKER_FLUSH_MS = 500
    body = [{"type": "personalized_card", "value": {
        "block_id": "opt-card", "default": card("plain"),
        "variants": [{"name": "alt", "segment": "", "content": card("alt"),
                      "condition": {"signal": "device", "op": "eq", "value": "desktop"}}],
        "optimize": {"enabled": True, "goal": "click", "context": "all", "min_share": 0.05}}}]
    root = Site.objects.get(is_default_site=True).root_page
    page = HomePage(title="Optimized", slug="optimized", body=as_saved(HomePage.body.field, body))
    root.add_child(instance=page)
    page.save_revision().publish()
    return page


def test_an_optimized_blocks_impression_and_click_teach_its_counters(optimized_page, page: Page):
    from microadjust_cms.visitor.stores import get_profile_store

    get_profile_store().reset_counters("opt-card")
    page.goto(optimized_page.url)
    wrapper = page.locator('[data-ma-block="opt-card"]')
    assert wrapper.get_attribute("data-ma-opt") == "all click"
    variant = wrapper.get_attribute("data-ma-variant")
    page.wait_for_timeout(1200)  # visible for more than impressionMs: an impression
    wrapper.get_by_role("link").click()
    page.evaluate("() => microadjust.flush()")
    assert wait_for(page, lambda: Event.objects.filter(type="click", block_id="opt-card").exists())
    assert wait_for(page, lambda: get_profile_store().load_counters(["opt-card"])["opt-card"].get(
        f"s|all|{variant}") == 1)
    assert get_profile_store().load_counters(["opt-card"])["opt-card"][f"n|all|{variant}"] >= 1
    leave(page)
