"""The tracker in Debian's chromium against gunicorn with production settings, while the
site's database is cut off (``tests/fault_servers.py``): the refused batch stays in the
browser and reaches the database once it is back, exactly once."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.browser.conftest import TIMEOUT_MS
from tests.fault_servers import query

pytestmark = pytest.mark.browser


def stored(site, name: str) -> int:
    return query(site.database_url, "SELECT count(*) FROM microadjust_cms_event WHERE name = %s",
                 name)[0][0]


def test_the_tracker_keeps_a_batch_the_database_could_not_take(browser, fault_site):
    context = browser.new_context(base_url=fault_site.origin)
    context.set_default_timeout(TIMEOUT_MS)
    context.route(lambda url: not url.startswith(fault_site.origin), lambda route: route.abort())
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    answers: list[int] = []
    page.on("response", lambda r: answers.append(r.status) if "/microadjust/collect/" in r.url else None)
    try:
        page.goto("/")
        assert page.evaluate("() => typeof window.microadjust") == "object"
        goal = f"kept-{uuid.uuid4().hex[:10]}"

        fault_site.proxy.cut()
        try:
            with page.expect_response(lambda r: "/microadjust/collect/" in r.url) as refused:
                page.evaluate("goal => { microadjust.goal(goal); microadjust.flush(); }", goal)
            assert refused.value.status == 503
            assert refused.value.headers.get("retry-after")
            page.wait_for_timeout(200)  # the fetch's promise settles after the response event
            pending = page.evaluate(
                "() => JSON.parse(localStorage.getItem('microadjust:pending') || '[]')")
            assert any(e.get("name") == goal for e in pending), pending
        finally:
            fault_site.proxy.restore()
        assert stored(fault_site, goal) == 0

        # The database is back: the next flush sends the kept batch again, and it is stored once.
        deadline = time.monotonic() + 30
        while stored(fault_site, goal) == 0 and time.monotonic() < deadline:
            page.evaluate("() => microadjust.flush()")
            page.wait_for_timeout(500)
        assert stored(fault_site, goal) == 1, (answers, fault_site.log()[-3000:])
        page.wait_for_timeout(300)
        assert page.evaluate("() => localStorage.getItem('microadjust:pending')") is None
        page.evaluate("() => microadjust.flush()")
        page.wait_for_timeout(500)
        assert stored(fault_site, goal) == 1  # not sent twice
        assert 503 in answers and 204 in answers and not [s for s in answers if s >= 500 and s != 503]
        assert not errors, errors
    finally:
        context.close()
