"""Browser tests: Debian's chromium driven by Playwright against pytest-django's live server.

Run with ``python -m pytest tests/browser``. Chromium comes from the system package
(``apt-get install chromium``), never from ``playwright install``. Without it the tests are
skipped, unless ``CI`` is set: then they fail, so CI cannot silently lose them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django would otherwise refuse
# ORM calls from the test body ("You cannot call this from an async context").
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("MICROADJUST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
EDITOR_USERNAME = "editor"
EDITOR_PASSWORD = "correct horse battery staple"
TIMEOUT_MS = 15_000


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (browser tests are required when CI is set)", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember each phase's report on the item so fixtures can react to failures."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def browser():
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        _unavailable(f"{CHROMIUM} not found: install Debian's chromium "
                     "(apt-get install chromium) to run the browser tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed: pip install -e '.[test]'")
    from django.db import connections

    # Playwright's sync API marks its event loop as running in this thread between calls, so
    # Django (asgiref's thread-critical Local) would hand the test code a second, "async" set
    # of database connections: without the test database's serialized contents, outside the
    # test's transaction handling. Pin the connections Django uses now to both.
    pinned = {alias: connections[alias] for alias in connections}
    with sync_playwright() as playwright:
        for alias, connection in pinned.items():
            connections[alias] = connection
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def artifacts() -> Path:
    """test-artifacts/ (gitignored): screenshots for humans to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def site_db(transactional_db, django_db_serialized_rollback):
    """The live server needs committed data, so the database is flushed after each test;
    serialized rollback restores what the migrations created (Wagtail's root page, default
    site, groups and collections) before the next one."""


@pytest.fixture
def editor(site_db, django_user_model):
    """A superuser with a known password (load_demo's own "admin" gets a random one)."""
    return django_user_model.objects.create_superuser(
        EDITOR_USERNAME, "editor@example.com", EDITOR_PASSWORD)


@pytest.fixture
def page(request, django_db_setup, browser, live_server):
    """A fresh browser page on the live server; JS errors fail the test, failures leave a
    screenshot in test-artifacts/.

    ``django_db_setup`` comes before ``live_server`` on purpose: pytest-django hands the server
    threads the test's own connection when the database looks in-memory at the moment the
    server starts, and before the test database exists it does (the settings say ":memory:").
    One SQLite connection used by several threads at once crashes the interpreter.
    """
    context = browser.new_context(base_url=live_server.url,
                                  viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    # The admin dashboard asks releases.wagtail.org for the latest version: stay offline.
    context.route(lambda url: not url.startswith(live_server.url), lambda route: route.abort())
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    if not failed:
        assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def admin_page(page, editor):
    """``page``, logged in to the Wagtail admin through the real login form."""
    page.goto("/admin/login/")
    page.get_by_label("Username").fill(EDITOR_USERNAME)
    page.get_by_label("Password").fill(EDITOR_PASSWORD)
    with page.expect_navigation(url="**/admin/") as navigation:
        page.get_by_role("button", name="Sign in").click()
    assert navigation.value.status == 200, "the admin dashboard did not load after login"
    return page
