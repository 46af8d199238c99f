"""The one decision function: server rendering, template tags, preview and the fragment API
all call ``decide`` so a visitor sees the same variant whichever path renders the block."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from ..conditions import Predicate, always, compile_condition
from ..conf import get_setting
from ..segments.membership import membership
from .optimizer import optimize

logger = logging.getLogger("microadjust_cms.decisions")


#: Process-wide caches; each is emptied when it grows past this (edited blocks leave garbage).
CACHE_LIMIT = 10000


def _remember(cache: dict, key: Any, value: Any) -> Any:
    if len(cache) > CACHE_LIMIT:
        cache.clear()
    cache[key] = value
    return value


def variant_predicate(segment: str, condition: Any) -> Predicate:
    """The compiled test for a variant: its segment (if any) and its condition."""
    key = (segment, repr(condition))  # repr: stable for the same stored JSON
    predicate = _variant_predicates.get(key)
    if predicate is None:
        rule = compile_condition(condition)
        if segment and rule is always:
            def predicate(visitor: Any) -> bool:
                return segment in membership(visitor)
        elif segment:
            def predicate(visitor: Any) -> bool:
                return segment in membership(visitor) and rule(visitor)
        else:
            predicate = rule
        _remember(_variant_predicates, key, predicate)
    return predicate


class Program(list):
    """(name, test, position) per variant, in order. ``bindings``: the variants bound to
    experiment arms (``experiments.binding``), empty for most blocks."""

    bindings: dict = {}  # noqa: RUF012 (never mutated; replaced per instance)

_variant_predicates: dict[tuple[str, str], Predicate] = {}
#: (block id, rules revision) → program; ``PersonalizedValue.program`` reads it directly (the
#: render path's one look-up).
programs_by_revision: dict[tuple[str, str], Program] = {}
_programs_by_stored: dict[str, tuple[Any, Program]] = {}


THIS_BLOCK = "this"


def bind_block(condition: Any, block_id: str) -> Any:
    """The condition with ``"param": "this"`` replaced by ``block_id`` in rules over block
    signals (``abandoned``, ``clicked``): a variant can ask about its own block, and the
    compiled test, keyed by the bound condition, is then this block's alone."""
    if isinstance(condition, list):
        return [bind_block(item, block_id) for item in condition]
    if not isinstance(condition, dict):
        return condition
    if "signal" in condition:
        if condition.get("param") == THIS_BLOCK and block_id:
            from ..signals.registry import registry

            signal = registry.get(condition["signal"])
            if signal is not None and signal.param_is_block:
                return {**condition, "param": block_id}
        return condition
    return {key: bind_block(child, block_id) for key, child in condition.items()}


def _uses_this(condition: Any) -> bool:
    return f'"{THIS_BLOCK}"' in json.dumps(condition) if condition else False


def compile_program(variants: list, block_id: str = "") -> Program:
    from ..experiments.binding import block_bindings

    program = Program()
    conditions = []
    for position, v in enumerate(variants):
        if not hasattr(v, "get"):
            continue
        condition = v.get("condition")
        if _uses_this(condition):
            condition = bind_block(condition, block_id)
        program.append((v.get("name") or "variant",
                        variant_predicate(v.get("segment") or "", condition), position))
        conditions.append((v.get("name") or "variant", condition))
    bindings = block_bindings(conditions)
    if bindings:
        program.bindings = bindings
    return program


def rules_revision(variants: Any) -> str:
    """A checksum of what decides (names, segments, conditions), stored with the block when it
    is saved: the compiled program is then found by (block id, revision) with no comparison."""
    rules = [[v.get("name"), v.get("segment") or "", v.get("condition") or {}]
             for v in variants if hasattr(v, "get")]
    encoded = json.dumps(rules, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(encoded.encode()).hexdigest()[:16]


def program_for_revision(block_id: str, revision: str,
                         variants: Callable[[], list]) -> Program:
    """The program of a saved block revision (compiled on first use, then one dict lookup)."""
    program = programs_by_revision.get((block_id, revision))
    if program is None:
        program = _remember(programs_by_revision, (block_id, revision),
                            compile_program(variants(), block_id))
    return program


def program_for_stored(block_id: str, stored: list, variants: Callable[[], list]) -> Program:
    """For stored data without a revision (written around the blocks): reused while the stored
    variants compare equal to the cached copy, never trusted blindly."""
    cached = _programs_by_stored.get(block_id)
    if cached is not None and cached[0] == stored:
        return cached[1]
    program = compile_program(variants(), block_id)
    _remember(_programs_by_stored, block_id, (copy.deepcopy(stored), program))
    return program


class Decision(NamedTuple):
    variant: str  # the variant's name, or "default"
    content: Any
    reason: str  # "match" or "default"


#: ``_new(Decision, (variant, content, reason))`` builds a Decision without the Python-level
#: ``__new__`` a NamedTuple has: one call less for every block rendered.
_new = tuple.__new__


#: ``visitor.memo[OPT_ATTRIBUTE, block id]``: the ``data-ma-opt`` value of an optimized choice.
OPT_ATTRIBUTE = "__opt"


def _matches(visitor: Any, results: dict, name: str, predicate: Predicate) -> bool:
    """A variant's test, once a request (a failing rule is false, logged)."""
    matched = results.get(predicate)
    if matched is None:
        try:
            matched = results[predicate] = bool(predicate(visitor))
        except Exception:
            logger.warning("Variant %r could not be evaluated; skipped", name, exc_info=True)
            matched = False
    return matched


def _optimized(value: Any, visitor: Any, program: Program, optimizer: Any,
               exclude: str | None) -> Decision | None:
    """Auto-optimize's choice among the matching variants and the default (``optimizer``),
    or None to fall back to the first match (one candidate, or counters unreadable)."""
    results = visitor.results
    positions = {name: position for name, predicate, position in program
                 if name != exclude and _matches(visitor, results, name, predicate)}
    candidates = [*positions, *(("default",) if exclude != "default" else ())]
    block_id = value.block_id
    picked = optimize(optimizer, visitor, block_id, candidates)
    if picked is None:
        return None
    variant, reason, context = picked
    visitor.memo[OPT_ATTRIBUTE, block_id] = optimizer.attribute(context)
    if variant == "default":
        return _new(Decision, ("default", value.default_content(), reason))
    return _new(Decision, (variant, value.variant_content(positions[variant]), reason))


def decide(value: Any, visitor: Any, *, exclude: str | None = None,
           prefer: str | None = None, program: Program | None = None) -> Decision:
    """First matching variant wins; the default is always there. Never raises for a condition:
    a failing rule is false (logged where it failed). ``prefer`` names a variant a trigger
    asks for (shown whatever its test says; reason "trigger"), ``exclude`` one to skip.

    ``value`` is a PersonalizedBlock value: ``program()`` gives its compiled variant tests and
    ``variant_content(position)`` (``default_content()``) converts only the winner's content;
    ``program`` is ``value.program()`` when the caller has it already (``render_for``: one
    look-up a block). The content may be shared between requests (``stream_cache``): read only.
    """
    if getattr(visitor, "held_out", False):  # the holdout, QA testers excepted (``experiments.runtime.held_out``)
        return _new(Decision, ("default", value.default_content(), "holdout"))  # defaults everywhere
    if prefer == "default":
        return Decision("default", value.default_content(), "trigger")
    if program is None:
        program = value.program()
    if prefer:
        for name, _predicate, position in program:
            if name == prefer:
                return Decision(name, value.variant_content(position), "trigger")
    optimizer = getattr(value, "optimizer", None)
    # Switched off site-wide, or a preview: not a single extra condition is evaluated.
    if optimizer is not None and get_setting("OPTIMIZE") and not visitor.simulated:
        decision = _optimized(value, visitor, program, optimizer, exclude)
        if decision is not None:
            return decision
    found = first_match(visitor, program, exclude)
    if found is not None:
        return _new(Decision, (found[0], value.variant_content(found[1]), "match"))
    return _new(Decision, ("default", value.default_content(), "default"))


def first_match(visitor: Any, program: Program,
                exclude: str | None = None) -> tuple[str, int] | None:
    """(name, position) of the first variant whose test passes, or None. A test shared by
    several blocks runs once a request (``visitor.results``); a failing rule is false, logged.
    Inline rather than through ``_matches``: it runs for every variant tested on every page."""
    results = visitor.results
    for name, predicate, position in program:
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
            return name, position
    return None
