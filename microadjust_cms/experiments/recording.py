"""Frequency caps and exposures: what a block's decision becomes once it is about to render.

Priority, from strongest: the global holdout (every block its default, decided in ``decide``);
then a variant bound to the visitor's experiment arm, and blocks set "never capped": they count
toward the caps but are never capped (capping an arm's content would make the arms differ by more
than their content); then every other adjustment, in page order, until the cap per page view
(``ADJUSTMENTS_PER_PAGEVIEW``) or per visit (``ADJUSTMENTS_PER_VISIT``) is reached: further blocks
show their default (reason "capped", not counted). Triggers (the fragment API) come last: they
count toward the visit's cap like any adjustment. When a block is bound to several experiments,
the one with the highest priority in which the visitor is enrolled owns the block.

An exposure is recorded when a block bound to the experiment renders for an enrolled visitor,
whichever of its variants shows: the same moment for every arm, so the arms stay comparable. An
arm variant with an extra condition, or one an earlier variant wins over, still counts its
visitors in their arm (intention to treat: the effect is diluted, never biased). Counting only
the visitors who saw their arm's own content would expose the arms unevenly, bias the report and
set off the sample ratio check. Exposures collect on the visitor and are written after the
response is built (``after_response``): one bulk ``INSERT ... ON CONFLICT DO NOTHING``, skipped
for experiments the cache remembers as stored for this visitor.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.core.cache import caches
from django.core.signals import setting_changed
from django.db import DatabaseError
from django.dispatch import receiver

from ..conf import get_setting
from ..faults import record
from ..visitor.stores.base import visitor_key
from .runtime import Assignment, visitor_assignment

if TYPE_CHECKING:
    from ..rendering.decisions import Decision

logger = logging.getLogger("microadjust_cms.experiments")
_new = tuple.__new__


def _owner(visitor: Any, bindings: dict) -> tuple[Assignment, dict] | None:
    """The enrolled experiment (highest priority) among those the block is bound to."""
    best = None
    for slug, arms in bindings.items():
        assignment = visitor_assignment(visitor, slug)
        if assignment is not None and (best is None or assignment.priority > best[0].priority):
            best = (assignment, arms)
    return best


def settle(value: Any, visitor: Any, decision: Decision, bindings: dict | None = None) -> Decision:
    """The decision after the frequency caps, noting the exposure it makes (module doc).
    ``bindings``: the program's, when the caller has them. A held-out decision has nothing to
    cap, count or expose (``assign`` enrolls nobody there but QA testers, who are not held out)."""
    if decision[2] == "holdout":
        return decision
    if bindings is None:
        bindings = value.program().bindings
    # The usual block: bound to no experiment, and either its default or no cap to count toward
    # (caps are off by default): nothing to settle, nothing to count.
    if not bindings and (decision[0] == "default" or _caps() == (None, None)):
        return decision
    owner = _owner(visitor, bindings) if bindings else None
    variant = decision[0]
    bound = owner is not None and variant in owner[1].get(owner[0].arm, ())
    if variant != "default":
        if bound or not cap_reached(visitor) or value.triggers.get("cap") == "never":
            visitor.counted_adjustments += 1
        else:
            decision = _new(type(decision), ("default", value["default"], "capped"))
            variant = "default"
    if owner is not None:
        _note_exposure(visitor, owner[0])
    return decision


def expose(visitor: Any, slug: str) -> None:
    """Note the exposure of an enrolled visitor to experiment ``slug``, for content tested
    outside a PersonalizedBlock (``{% ifvisitor signal="experiment_arm" %}``)."""
    assignment = visitor_assignment(visitor, slug)
    if assignment is not None:
        _note_exposure(visitor, assignment)


def _note_exposure(visitor: Any, assignment: Assignment) -> None:
    if not assignment.qa:  # a QA tester's views are never counted
        visitor.exposures.append((assignment.experiment_id, assignment.arm_id))


def _cache() -> Any:
    return caches[get_setting("CACHE_ALIAS")]


def _visit_key(visitor_id: str) -> str:
    return visitor_key(visitor_id, "adjusted")


def visit_adjustments_before(visitor: Any) -> int:
    """Adjustments counted earlier in this visit (read once a request, when first needed)."""
    count = visitor.visit_adjustments_before
    if count is None:
        count = 0
        if visitor.visitor_id and get_setting("ADJUSTMENTS_PER_VISIT") is not None:
            try:
                count = int(_cache().get(_visit_key(visitor.visitor_id)) or 0)
            except Exception:
                record("caps_cache", "Could not read the visit's adjustment count; the visit cap counts "
                       "this page only", log=logger)
        visitor.visit_adjustments_before = count
    return count


def cap_reached(visitor: Any) -> bool:
    counted = visitor.counted_adjustments
    per_page, per_visit = _caps()
    if per_page is not None and counted >= per_page:
        return True
    if per_visit is None:
        return False
    before = visitor.visit_adjustments_before
    return (before if before is not None else visit_adjustments_before(visitor)) + counted >= per_visit


def add_visit_adjustments(visitor_id: str, count: int) -> None:
    """Add to the visit's count atomically (two tabs of one visit both count: an increment, not
    a read then a write), and slide its expiry."""
    cache, key, idle = _cache(), _visit_key(visitor_id), get_setting("VISIT_IDLE_SECONDS")
    if not cache.add(key, count, idle):
        try:
            cache.incr(key, count)
        except ValueError:  # expired between the two calls: this request starts the visit
            cache.set(key, count, idle)
        cache.touch(key, idle)


_caps_setting: tuple[int | None, int | None] | None = None


def _caps() -> tuple[int | None, int | None]:
    """(per page view, per visit): read once (every personalized block asks), again after a
    settings change."""
    global _caps_setting
    caps = _caps_setting
    if caps is None:
        caps = _caps_setting = (get_setting("ADJUSTMENTS_PER_PAGEVIEW"), get_setting("ADJUSTMENTS_PER_VISIT"))
    return caps


@receiver(setting_changed)
def _forget_caps(**_kwargs: Any) -> None:
    global _caps_setting
    _caps_setting = None


def after_response(visitor: Any) -> None:
    """The request's writes, once the response is built: the visit's adjustment count (its
    expiry slides, so 30 idle minutes start a new visit) and the new exposures. Installed in
    ``visitor.context.after_response_hooks`` by ``apps.ready``; most requests have neither."""
    if not (visitor.exposures or visitor.counted_adjustments):
        return
    # A preview (Wagtail's, or "as a segment") is an editor checking the page: no exposure and
    # nothing toward the caps, whoever the editor is.
    if visitor.simulated or not visitor.visitor_id or getattr(visitor.request, "is_preview", False):
        return
    if visitor.counted_adjustments and get_setting("ADJUSTMENTS_PER_VISIT") is not None:
        try:
            add_visit_adjustments(visitor.visitor_id, visitor.counted_adjustments)
        except Exception:
            record("caps_cache", "Could not store the visit's adjustment count", log=logger)
    # Bots and HEAD requests are not exposures (as they are not page views): a crawler without
    # the cookie would add a row per request that can never convert.
    if visitor.exposures and visitor.request.method == "GET" and visitor.signal("device") != "bot":
        write_exposures(visitor.visitor_id, visitor.exposures)


def _exposure_key(visitor_id: str, experiment_id: int) -> str:
    return visitor_key(visitor_id, f"exposed:{experiment_id}")


def write_exposures(visitor_id: str, exposures: list[tuple[int, int]]) -> int:
    """Insert the first exposure per experiment (conflicts ignored: the first one stays).
    Returns how many rows were offered to the database (0 when the cache knew them all)."""
    from .models import Exposure

    first: dict[int, int] = {}
    for experiment_id, arm_id in exposures:
        first.setdefault(experiment_id, arm_id)
    keys = {_exposure_key(visitor_id, experiment_id): experiment_id for experiment_id in first}
    try:
        known = _cache().get_many(list(keys))
    except Exception:
        record("exposure_cache", "Could not read which exposures are stored", log=logger)
        known = {}
    new = {keys[key]: first[keys[key]] for key in keys if key not in known}
    if not new:
        return 0
    try:
        Exposure.objects.bulk_create(
            [Exposure(visitor_id=visitor_id, experiment_id=e, arm_id=a) for e, a in new.items()],
            ignore_conflicts=True)
    except DatabaseError:
        record("exposure_database", "Could not store exposures", log=logger)
        return 0
    try:
        _cache().set_many({key: 1 for key, e in keys.items() if e in new}, get_setting("PROFILE_TTL"))
    except Exception:
        record("exposure_cache", "Could not remember stored exposures", log=logger)
    return len(new)
