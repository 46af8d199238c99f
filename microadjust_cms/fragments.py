"""The fragment API: one personalized block rendered for this visitor, as JSON.

Triggers in ``tracker.js`` ask it for a new variant (an abandoned block, a timed reveal), so a
page served from a shared cache can still be adjusted in the browser. It uses the same
``decide`` as server rendering; ``exclude`` skips the variant the visitor already saw, and the
block's trigger settings (not the request) say which named variant an abandon or a timed
reveal shows.
A published page's blocks are found through ``fragment_cache`` (by live revision).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET
from wagtail.models import Page

from .block_ids import object_personalized_values
from .collect_schema import BLOCK_ID_RE
from .context import get_visitor
from .fragment_cache import cached_personalized_value, view_restrictions
from .responses import problem

REASONS = ("abandon", "timer", "manual")


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


@require_GET
def fragment(request: HttpRequest) -> JsonResponse:
    page_id, block_id = request.GET.get("page", ""), request.GET.get("block", "")
    reason, exclude = request.GET.get("reason", "manual"), request.GET.get("exclude") or None
    errors = []
    if not page_id.isdigit() or len(page_id) > 10:
        errors.append("page: must be a page id")
    if not BLOCK_ID_RE.match(block_id):
        errors.append("block: must be a block id (letters, digits, - and _, at most 64)")
    if reason not in REASONS:
        errors.append(f"reason: must be one of {', '.join(REASONS)}")
    if exclude is not None and len(exclude) > 50:
        errors.append("exclude: must be a variant name of at most 50 characters")
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
