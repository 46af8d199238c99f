"""Personalization → Auto-optimize in Debian's chromium: what each block has learned."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from microadjust_cms.behaviour import BehaviourUpdate
from microadjust_cms.visitor.stores import get_profile_store

pytestmark = pytest.mark.browser
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "auto-optimize.png"


def test_the_admin_shows_each_contexts_posteriors_and_resets_a_block(admin_page: Page, artifacts):
    call_command("load_demo", stdout=open(os.devnull, "w"))
    store = get_profile_store()
    store.reset_counters("tides-1")
    store.record_events("a" * 32, BehaviourUpdate(counters={"tides-1": {
        "n|cluster-2|video": 180, "s|cluster-2|video": 30, "n|cluster-2|simpler": 420, "s|cluster-2|simpler": 151,
        "n|cluster-2|default": 60, "s|cluster-2|default": 7,
        "n|cluster-4|video": 90, "s|cluster-4|video": 31, "n|cluster-4|simpler": 70, "s|cluster-4|simpler": 19,
        "n|cluster-4|default": 40, "s|cluster-4|default": 9}}), now=1.0)
    page = admin_page
    page.goto("/admin/")
    page.get_by_role("button", name="Personalization").click()
    page.get_by_role("link", name="Auto-optimize").click()
    expect(page.locator("h1")).to_contain_text("Auto-optimize")
    block = page.locator('[data-ma-optimized-block="tides-1"]')
    expect(block.locator('[data-ma-context="cluster-2"] [data-ma-candidate="simpler"]')).to_be_visible()
    expect(block.locator("[data-ma-stopped]")).to_contain_text("simpler dominates")  # cluster-2
    expect(block.locator('[data-ma-context="cluster-4"]')).to_be_visible()
    page.mouse.move(0, 0)
    shot = artifacts / "auto-optimize.png"
    block.screenshot(path=str(shot))
    if os.environ.get("MICROADJUST_UPDATE_SCREENSHOTS"):
        shutil.copyfile(shot, DOCS_SCREENSHOT)
    page.on("dialog", lambda dialog: dialog.accept())
    block.get_by_role("button", name="Reset its learning").click()
    expect(page.locator(".messages")).to_contain_text("starts learning again")
    assert store.load_counters(["tides-1"]) == {"tides-1": {}}
