"""The fragment API: one personalized block rendered for this visitor, as JSON.

Triggers in ``tracker.js`` ask it for a new variant (an abandoned block, a timed reveal), so a
page served from a shared cache can still be adjusted in the browser. It uses the same
``decide`` as server rendering; ``exclude`` skips the variant the visitor already saw, and the
block's trigger settings (not the request) say which named variant an abandon or a timed
reveal shows.
A published page's blocks are found through ``fragment_cache`` (by live revision).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from wagtail.models import Page

from ..responses import problem, unavailable_without_database
from ..tracking.schema import BLOCK_ID_RE, CONTROL_RE
from ..visitor.context import get_visitor
from .block_ids import object_personalized_values
from .fragment_cache import cached_personalized_value, view_restrictions

logger = logging.getLogger("microadjust_cms.fragments")
REASONS = ("abandon", "timer", "manual")
#: A page id: ASCII digits only (``str.isdigit`` also accepts "²" and "٣"), at most 2^31 - 1.
PAGE_ID_RE = re.compile(r"^[0-9]{1,10}\Z")
MAX_PAGE_ID = 2**31 - 1
MAX_EXCLUDE = 50


def find_personalized_value(page: Page, block_id: str):
    """The PersonalizedBlock value with this block id in any StreamField of the page, or None."""
    return next((v for v in object_personalized_values(page) if v.block_id == block_id), None)


def trigger_variant(triggers: Mapping[str, Any], reason: str) -> str | None:
    """The variant the block's trigger settings name for this reason, if any (else the best
    match excluding the current variant is shown)."""
    if reason == "abandon" and triggers.get("on_abandon") == "variant":
        return triggers.get("abandon_variant") or None
    if reason == "timer":
        return triggers.get("reveal_variant") or None
    return None


# Only GET and HEAD are served, which CSRF protection does not cover anyway. Without the exemption
# Django's CSRF check answered a POST, PUT, PATCH or DELETE with its own 403 HTML page before this
# view could answer with the documented 405 problem.
@csrf_exempt
@unavailable_without_database("the fragment could not be rendered", logger)
def fragment(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        response = problem(405, "method_not_allowed", "GET a fragment")
        response["Allow"] = "GET, HEAD"
        return response
    try:
        query = request.GET
    except SuspiciousOperation:  # TooManyFieldsSent: Django's own answer would be an HTML page
        return problem(400, "bad_request", "too many query parameters")
    page_id, block_id = query.get("page", ""), query.get("block", "")
    reason, exclude = query.get("reason", "manual"), query.get("exclude") or None
    errors = []
    if not PAGE_ID_RE.match(page_id) or not 1 <= int(page_id) <= MAX_PAGE_ID:
        errors.append(f"page: must be a page id (ASCII digits, 1 to {MAX_PAGE_ID})")
    if not BLOCK_ID_RE.match(block_id):
        errors.append("block: must be a block id (letters, digits, - and _, at most 64)")
    if reason not in REASONS:
        errors.append(f"reason: must be one of {', '.join(REASONS)}")
    if exclude is not None and (len(exclude) > MAX_EXCLUDE or CONTROL_RE.search(exclude)):
        errors.append(f"exclude: must be a variant name of at most {MAX_EXCLUDE} characters, "
                      "without control characters")
    if errors:
        return problem(400, "bad_request", errors)
    page = Page.objects.live().filter(pk=int(page_id)).first()
    if page is None:
        return problem(404, "not_found", "no live page with this id")
    cached, value = cached_personalized_value(page, block_id)
    # Cached: the specific fields are read only if a template asks for them.
    page = page.specific_deferred if cached else page.specific
    for restriction in view_restrictions(page):
        if not restriction.accept_request(request):
            return problem(403, "restricted", "this page is restricted")
    if not cached:
        value = find_personalized_value(page, block_id)
    if value is None:
        return problem(404, "not_found", "no personalized block with this id on the page")
    request._ma_no_record = True  # type: ignore[attr-defined]  # the page view was counted already
    visitor = get_visitor(request)
    visitor.set_page(page)
    decision = value.decide(visitor, exclude=exclude, prefer=trigger_variant(value.triggers, reason))
    html = value.render_for(visitor, {"request": request, "page": page}, decision=decision)
    response = JsonResponse({"html": str(html), "block": block_id, "variant": decision.variant,
                             "reason": reason})
    response["Cache-Control"] = "private, no-cache"
    return response
