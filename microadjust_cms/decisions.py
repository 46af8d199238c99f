"""The one decision function: server rendering, template tags, preview and the fragment API
all call ``decide`` so a visitor sees the same variant whichever path renders the block."""

from __future__ import annotations

import copy
import logging
from typing import Any, NamedTuple

from .conditions import Predicate, compile_condition

logger = logging.getLogger("microadjust_cms.decisions")


def variant_predicate(segment: str, condition: Any, slot: Any = None) -> Predicate:
    """The compiled test for a variant: its segment (if any) and its condition.

    ``slot`` (e.g. (block id, position)) names where the variant sits: the last test compiled
    there is reused while its stored segment and condition compare equal, which is cheaper than
    building a content key. Without a slot the key is the condition's ``repr``.
    """
    if slot is not None:
        cached = _by_slot.get(slot)
        if cached is not None and cached[0] == segment and cached[1] == condition:
            return cached[2]
    key = (segment, repr(condition))  # repr: stable for the same stored JSON
    predicate = _variant_predicates.get(key)
    if predicate is None:
        rule = compile_condition(condition)
        if segment:
            def predicate(visitor: Any) -> bool:
                return segment in visitor.segments and rule(visitor)
        else:
            predicate = rule
        if len(_variant_predicates) > 10000:
            _variant_predicates.clear()
        _variant_predicates[key] = predicate
    if slot is not None:
        if len(_by_slot) > 20000:
            _by_slot.clear()
        _by_slot[slot] = (segment, copy.deepcopy(condition), predicate)
    return predicate


_variant_predicates: dict[tuple[str, str], Predicate] = {}
_by_slot: dict[Any, tuple[str, Any, Predicate]] = {}


class Decision(NamedTuple):
    variant: str  # the variant's name, or "default"
    content: Any
    reason: str  # "match" or "default"


def decide(value: Any, visitor: Any, *, exclude: str | None = None) -> Decision:
    """First matching variant wins; the default is always there. Never raises for a condition:
    a failing rule is false (logged where it failed).

    ``value`` is a PersonalizedBlock value: its ``variant_items()`` are stored dicts or
    converted variants (both answer ``get``) and ``content_of`` converts only the winner.
    """
    results = visitor.results
    block_id = value.block_id
    for position, variant in enumerate(value.variant_items()):
        name = variant.get("name") or "variant"
        if name == exclude:
            continue
        predicate = variant_predicate(variant.get("segment") or "", variant.get("condition"),
                                      (block_id, position))
        matched = results.get(predicate)
        if matched is None:
            try:
                matched = results[predicate] = bool(predicate(visitor))
            except Exception:
                logger.warning("Variant %r could not be evaluated; skipped", name, exc_info=True)
                matched = False
        if matched:
            return Decision(name, value.content_of(variant.get("content")), "match")
    return Decision("default", value["default"], "default")
