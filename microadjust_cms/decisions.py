"""The one decision function: server rendering, template tags, preview and the fragment API
all call ``decide`` so a visitor sees the same variant whichever path renders the block."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from typing import Any, NamedTuple

from .conditions import Predicate, compile_condition

logger = logging.getLogger("microadjust_cms.decisions")


def variant_predicate(segment: str, condition: Any) -> Predicate:
    """The compiled test for a variant: its segment (if any) and its condition."""
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
    return predicate


_variant_predicates: dict[tuple[str, str], Predicate] = {}

#: A block's variant tests, cached per block id while its stored variants compare equal.
Program = list[tuple[str, Predicate, int]]
_programs: dict[str, tuple[Any, Program]] = {}


def rules_revision(variants: Any) -> str:
    """A checksum of what decides (names, segments, conditions), stored with the block when it
    is saved: the compiled program is then found by (block id, revision) with no comparison."""
    rules = [[v.get("name"), v.get("segment") or "", v.get("condition") or {}]
             for v in variants if hasattr(v, "get")]
    encoded = json.dumps(rules, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(encoded.encode()).hexdigest()[:16]


def program_for_revision(block_id: str, revision: str, variants: Any) -> Program:
    """The program of a saved block revision (compiled on first use, then one dict lookup)."""
    key = (block_id, revision)
    program = _programs_by_revision.get(key)
    if program is None:
        program = variant_program(block_id, None, variants() if callable(variants) else variants)
        if len(_programs_by_revision) > 10000:
            _programs_by_revision.clear()
        _programs_by_revision[key] = program
    return program


_programs_by_revision: dict[tuple[str, str], Program] = {}


def cached_program(block_id: str, stored: Any) -> Program | None:
    """The block's program if its stored variants still compare equal to the cached copy: one
    deep equality check replaces per-variant cache keys."""
    cached = _programs.get(block_id)
    if cached is not None and cached[0] == stored:
        return cached[1]
    return None


def variant_program(block_id: str, stored: Any, variants: list) -> Program:
    """(name, test, position) per variant, in order; cached when ``stored`` (the block's stored
    variants) is given, not for values that come from a form (preview)."""
    program = [(v.get("name") or "variant",
                variant_predicate(v.get("segment") or "", v.get("condition")), position)
               for position, v in enumerate(variants) if hasattr(v, "get")]
    if stored is not None:
        if len(_programs) > 10000:
            _programs.clear()
        _programs[block_id] = (copy.deepcopy(stored), program)
    return program


class Decision(NamedTuple):
    variant: str  # the variant's name, or "default"
    content: Any
    reason: str  # "match" or "default"


def decide(value: Any, visitor: Any, *, exclude: str | None = None) -> Decision:
    """First matching variant wins; the default is always there. Never raises for a condition:
    a failing rule is false (logged where it failed).

    ``value`` is a PersonalizedBlock value: ``program()`` gives its compiled variant tests and
    ``variant_content(position)`` converts only the winner's content.
    """
    results = visitor.results
    for name, predicate, position in value.program():
        if name == exclude:
            continue
        matched = results.get(predicate)
        if matched is None:
            try:
                matched = results[predicate] = bool(predicate(visitor))
            except Exception:
                logger.warning("Variant %r could not be evaluated; skipped", name, exc_info=True)
                matched = False
        if matched:
            return Decision(name, value.variant_content(position), "match")
    return Decision("default", value["default"], "default")
