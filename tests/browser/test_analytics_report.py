"""Reports → Personalization in Chromium: the table of variants, the device filter and
sorting through Wagtail's own listing controls."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

if not os.environ.get("CI"):  # in CI a missing playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api",
                        reason="playwright is not installed: pip install -e '.[test]'")
from playwright.sync_api import expect  # noqa: E402

from microadjust_cms.analytics import rollups  # noqa: E402
from microadjust_cms.tracking.models import Event  # noqa: E402

pytestmark = pytest.mark.browser
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "personalization-report.png"


def traffic(page_id: int, block: str, variant: str, people: int, clicks: int, device: str,
            segments: str = "") -> list[Event]:
    when = timezone.now() - timedelta(hours=2)
    common = {"page_id": page_id, "path": "/", "block_id": block, "variant": variant, "device": device,
              "segments": segments}
    ids = [hashlib.md5(f"{block}-{variant}-{device}-{i}".encode()).hexdigest() for i in range(people)]
    events = [Event(type="impression", occurred_at=when, visitor_id=v, **common) for v in ids]
    events += [Event(type="click", occurred_at=when, visitor_id=v, **common) for v in ids[:clicks]]
    events += [Event(type="dwell", occurred_at=when, visitor_id=v, value=3_000 + 400 * i, **common)
               for i, v in enumerate(ids)]
    return events


def page_views(page_id: int, people: int, reached: dict[int, int]) -> list[Event]:
    when = timezone.now() - timedelta(hours=2)
    ids = [hashlib.md5(f"reader-{i}".encode()).hexdigest() for i in range(people)]
    common = {"page_id": page_id, "path": "/", "device": "desktop"}
    events = [Event(type="pageview", occurred_at=when, visitor_id=v, **common) for v in ids]
    for depth, count in reached.items():
        events += [Event(type="scroll", occurred_at=when, visitor_id=v, value=depth, **common)
                   for v in ids[:count]]
    return events


@pytest.fixture
def report_data(site_db):
    call_command("load_demo", stdout=open(os.devnull, "w"))
    from project.demo.models import HomePage

    home = HomePage.objects.get()
    # The demo's rule segments, as the tracker stamps them: returning visitors are loyal readers,
    # the mobile banner's visitors came from a campaign.
    Event.objects.bulk_create(traffic(home.pk, "welcome-hero", "returning", 60, 21, "desktop", "loyal-readers")
                              + traffic(home.pk, "welcome-hero", "default", 80, 8, "desktop")
                              + traffic(home.pk, "mobile-banner", "mobile", 30, 12, "mobile", "campaign-visitors")
                              + traffic(home.pk, "newsletter-offer", "default", 5, 1, "desktop")
                              + page_views(home.pk, 150, {25: 140, 50: 110, 75: 70, 90: 30, 100: 12}))
    rollups.refresh()
    return home


def test_the_report_filters_by_segment_through_its_form(admin_page, report_data):
    page = admin_page
    page.goto("/admin/microadjust/reports/personalization/")
    table = page.locator("table.listing")
    expect(table.locator("tbody tr")).to_have_count(4)
    page.get_by_role("button", name="Show filters").click()  # Wagtail's filter menu
    page.get_by_role("button", name="Segment").click()
    page.get_by_label("Segment").select_option(label="Campaign visitors")
    expect(table.locator("tbody tr")).to_have_count(1)  # Wagtail's filters apply as they change
    expect(table.locator("tbody tr").first).to_contain_text("mobile-banner")
    expect(table.locator("tbody tr").first).to_contain_text("40.0%")
    assert "segment=campaign-visitors" in page.url


def test_the_report_filters_by_device_and_sorts(admin_page, report_data, artifacts):
    page = admin_page
    page.goto("/admin/microadjust/reports/personalization/")
    table = page.locator("table.listing")
    expect(table.locator("tbody tr")).to_have_count(4)
    first = table.locator("tbody tr").first
    expect(first).to_contain_text("welcome-hero")
    expect(first).to_contain_text("default")  # 80 impressions: the most
    expect(table.locator("tbody tr", has_text="newsletter-offer")).to_contain_text("fewer than 10 visitors")

    # Sorting by CTR, highest first: the mobile banner (40 %), then the returning hero (35 %).
    page.goto("/admin/microadjust/reports/personalization/?ordering=-ctr")
    expect(table.locator("tbody tr").first).to_contain_text("mobile-banner")
    expect(table.locator("tbody tr").first).to_contain_text("40.0%")

    # The device filter, through the report's filter form.
    page.goto("/admin/microadjust/reports/personalization/?device=mobile")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.locator("tbody tr").first).to_contain_text("mobile-banner")

    page.set_viewport_size({"width": 1680, "height": 640})  # every column in the picture
    page.goto("/admin/microadjust/reports/personalization/")
    page.mouse.move(0, 0)
    shot = artifacts / "personalization-report.png"
    page.screenshot(path=str(shot), full_page=False)
    if os.environ.get("MICROADJUST_UPDATE_SCREENSHOTS"):
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)


def test_a_page_report_opens_from_the_list(admin_page, report_data, artifacts):
    page = admin_page
    page.set_viewport_size({"width": 1280, "height": 1400})
    page.goto("/admin/microadjust/reports/personalization/")
    page.locator("table.listing tbody tr").first.get_by_role("link", name="Home").click()
    expect(page.locator("h1")).to_contain_text("Home")
    chart = page.get_by_role("img", name="Share of page views reaching each scroll depth")
    expect(chart).to_be_visible()
    expect(page.locator("[data-ma-dropoff] tbody tr", has_text="75%")).to_contain_text("47%")
    sections = page.locator("[data-ma-block-figures]")
    expect(sections).to_have_count(3)
    expect(page.get_by_role("img", name="CTR of each variant of welcome-hero, with 95% intervals")).to_be_visible()
    # the device filter, through the page's own form
    page.get_by_label("Device").select_option("mobile")
    page.get_by_role("button", name="Show").click()
    expect(sections).to_have_count(1)
    expect(sections.first).to_contain_text("mobile-banner")
    page.goto(page.url.split("?")[0])
    page.mouse.move(0, 0)
    shot = artifacts / "personalization-page-report.png"
    page.screenshot(path=str(shot), full_page=False)
    if os.environ.get("MICROADJUST_UPDATE_SCREENSHOTS"):
        shutil.copyfile(shot, DOCS_SCREENSHOT.parent / "personalization-page-report.png")



@pytest.fixture
def hourly_data(site_db):
    """A day and a half of traffic on the home page's hero, rising and falling by the hour."""
    call_command("load_demo", stdout=open(os.devnull, "w"))
    from project.demo.models import HomePage

    home = HomePage.objects.get()
    now = timezone.now()
    events = []
    for back in range(1, 37):
        when = now - timedelta(hours=back)
        people = 12 + round(20 * (1 + math.sin(2 * math.pi * (when.hour - 9) / 24)))
        common = {"page_id": home.pk, "path": "/", "block_id": "welcome-hero", "variant": "returning",
                  "device": "desktop"}
        ids = [hashlib.md5(f"{back}-{i}".encode()).hexdigest() for i in range(people)]
        events += [Event(type="impression", occurred_at=when, visitor_id=v, **common) for v in ids]
        events += [Event(type="click", occurred_at=when, visitor_id=v, **common) for v in ids[:people // 4]]
    Event.objects.bulk_create(events)
    rollups.refresh()
    return home, now


def test_the_page_report_shows_its_last_hours(admin_page, hourly_data, artifacts):
    """The hourly rollups: a chart of the last 48 hours, and a table behind a disclosure."""
    home, now = hourly_data
    page = admin_page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/admin/microadjust/reports/personalization/page/{home.pk}/#hours")
    chart = page.get_by_role("img", name="Block impressions on this page, hour by hour")
    expect(chart).to_be_visible()
    expect(chart.locator("rect")).to_have_count(36)  # 36 hours of traffic; 12 without are blank
    hours = page.locator("[data-ma-hours]")
    expect(hours).to_be_hidden()
    page.get_by_text("The same figures as a table").click()
    expect(hours).to_be_visible()
    expect(hours.locator("tbody tr")).to_have_count(48)
    latest = hours.locator("tbody tr").nth(1)  # newest first; the current hour has nothing yet
    hour_ago = now - timedelta(hours=1)
    people = 12 + round(20 * (1 + math.sin(2 * math.pi * (hour_ago.hour - 9) / 24)))
    expect(latest.locator("td").nth(1)).to_have_text(str(people))
    expect(latest.locator("td").nth(2)).to_have_text(str(people // 4))
    expect(hours.locator("tbody tr").first).to_contain_text("fewer than 10 visitors")
    page.get_by_text("The same figures as a table").click()  # closed again for the picture
    page.mouse.move(0, 0)
    section = page.locator("#hours")
    section.scroll_into_view_if_needed()
    shot = artifacts / "personalization-page-hours.png"
    box = section.bounding_box()
    page.screenshot(path=str(shot), clip={"x": box["x"] - 16, "y": box["y"] - 12, "width": 1010, "height": 350})
    if os.environ.get("MICROADJUST_UPDATE_SCREENSHOTS"):
        shutil.copyfile(shot, DOCS_SCREENSHOT.parent / "personalization-page-hours.png")


def test_a_personalized_block_in_the_page_editor_links_to_its_figures(admin_page, report_data):
    page = admin_page
    page.goto(f"/admin/pages/{report_data.pk}/edit/")
    link = page.locator("a.ma-figures-link[href$='#block-welcome-hero']")
    expect(link).to_have_count(1)
    expect(link).to_be_visible()
    href = link.get_attribute("href")
    assert href == f"/admin/microadjust/reports/personalization/page/{report_data.pk}/#block-welcome-hero"
    page.goto(href)
    expect(page.locator("#block-welcome-hero")).to_contain_text("CTR of each variant")
