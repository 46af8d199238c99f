"""Conditions: JSON trees over signals, validated when saved and compiled once to predicates.

A condition is ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}`` or a rule
``{"signal": "visit_count", "op": "gte", "value": 3}`` (``"param"`` for signals that take one).
Nothing is ever ``eval``'d: compiling builds closures over the operator functions below.
"""

from __future__ import annotations

import json
import logging
import operator
from collections.abc import Callable, Iterator
from typing import Any

from ..signals.registry import SignalRegistry
from ..signals.registry import registry as default_registry

logger = logging.getLogger("microadjust_cms.conditions")

Predicate = Callable[[Any], bool]

OPERATOR_LABELS = {
    "eq": "is", "ne": "is not", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥",
    "in": "is one of", "not_in": "is none of", "contains": "contains",
    "between": "is between", "exists": "is set",
}
MAX_DEPTH = 8
MAX_RULES = 50
MAX_LIST = 100
MAX_STRING = 200


class ConditionError(ValueError):
    """A condition that cannot be saved; ``errors`` lists one message per problem."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return str(expected).lower() in actual.lower()
    return expected in actual


def _in(actual: Any, expected: list) -> bool:
    if isinstance(actual, str | int | float | bool):
        return actual in expected
    return any(item in actual for item in expected)


def _between(actual: Any, expected: list) -> bool:
    return expected[0] <= actual <= expected[1]


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "ne": operator.ne,
    "lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge,
    "in": _in, "not_in": lambda a, e: not _in(a, e),
    "contains": _contains, "between": _between,
}


# -- validation ---------------------------------------------------------------------------------

def _type_ok(signal_type: str, value: Any) -> bool:
    if signal_type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if signal_type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if signal_type == "boolean":
        return isinstance(value, bool)
    return isinstance(value, str) and 0 < len(value) <= MAX_STRING  # string, set members


TYPE_WORDS = {"integer": "a whole number", "number": "a number", "boolean": "true or false",
              "string": "a non-empty text of at most 200 characters",
              "set": "a non-empty text of at most 200 characters"}


def describe_rule(rule: dict) -> str:
    signal = rule.get("signal", "?")
    if rule.get("param"):
        signal = f"{signal}[{rule['param']}]"
    op = OPERATOR_LABELS.get(rule.get("op"), rule.get("op", "?"))
    if rule.get("op") == "exists":
        return f"{signal} {op}"
    return f"{signal} {op} {json.dumps(rule.get('value'), ensure_ascii=False)}"


def _validate_rule(
    rule: dict, number: int, reg: SignalRegistry, errors: list[str], check_choices: bool
) -> None:
    def fail(message: str) -> None:
        errors.append(f"Rule {number} ({describe_rule(rule)}): {message}")

    unknown_keys = set(rule) - {"signal", "op", "value", "param"}
    if unknown_keys:
        return fail(f"unknown keys {sorted(unknown_keys)}")
    name = rule.get("signal")
    signal = reg.get(name) if isinstance(name, str) else None
    if signal is None:
        return fail(f"unknown signal {name!r}")
    op = rule.get("op")
    if op not in OPERATOR_LABELS:
        return fail(f"unknown operator {op!r}")
    if op not in signal.operators:
        return fail(f"operator {op!r} does not apply to a {signal.type} signal; "
                    f"use one of {', '.join(signal.operators)}")
    param = rule.get("param")
    if signal.takes_param:
        if not isinstance(param, str) or not param.strip() or len(param) > MAX_STRING:
            return fail(f"{signal.param_label} is required")
        param_choices = signal.get_param_choices() if check_choices else None
        if param_choices is not None and param not in {str(c[0]) for c in param_choices}:
            return fail(f"{param} is not one of the {signal.param_label} choices "
                        f"({', '.join(sorted(str(c[0]) for c in param_choices)) or 'none yet'})")
    elif param not in (None, ""):
        return fail("this signal takes no parameter")
    value = rule.get("value")
    base_type = "string" if signal.type == "set" else signal.type
    if op == "exists":
        if value not in (None, True, False):
            return fail("'is set' takes true, false or nothing")
        return None
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or len(value) > MAX_LIST:
            return fail(f"value must be a list of 1 to {MAX_LIST} items")
        items = value
    elif op == "between":
        if not isinstance(value, list) or len(value) != 2:
            return fail("value must be a pair [low, high]")
        items = value
    else:
        items = [value]
    for item in items:
        if not _type_ok(base_type, item):
            return fail(f"value must be {TYPE_WORDS[signal.type]}")
    if op == "between" and items[0] > items[1]:
        return fail("low must not be greater than high")
    choices = signal.get_choices(param if isinstance(param, str) else None) if check_choices else None
    if choices is not None and op in ("eq", "ne", "in", "not_in", "contains"):
        allowed = {str(c[0]) for c in choices}
        bad = [i for i in items if str(i) not in allowed]
        if bad:
            return fail(f"{', '.join(map(str, bad))} is not one of the choices "
                        f"({', '.join(sorted(allowed)) or 'none defined'})")
    return None


def rules_over(condition: Any, signal: str) -> Iterator[dict]:
    """Every rule (leaf) of ``condition`` about ``signal``, at any depth, ``not`` groups
    included: what a condition refers to (segments it names, experiment arms it binds)."""
    if isinstance(condition, dict):
        if condition.get("signal") == signal:
            yield condition
            return
        for child in condition.values():
            yield from rules_over(child, signal)
    elif isinstance(condition, list):
        for child in condition:
            yield from rules_over(child, signal)


def validate_condition(
    condition: Any, reg: SignalRegistry | None = None, *, check_choices: bool = True
) -> None:
    """Raise ``ConditionError`` listing every problem, each naming its rule; else return None.

    ``check_choices=False`` skips comparing values with the signals' choices (which may query
    the database, e.g. segments): the render path uses it, editors' forms do not.
    """
    reg = reg or default_registry
    errors: list[str] = []
    counter = [0]

    def walk(node: Any, depth: int) -> None:
        if depth > MAX_DEPTH:
            errors.append(f"Groups are nested deeper than {MAX_DEPTH} levels")
            return
        if not isinstance(node, dict):
            errors.append(f"Expected a group or a rule, got {type(node).__name__}")
            return
        if "signal" in node or "op" in node:
            counter[0] += 1
            _validate_rule(node, counter[0], reg, errors, check_choices)
            return
        if len(node) != 1:
            errors.append("A group has exactly one of 'all', 'any' or 'not'")
            return
        (key, children), = node.items()
        if key == "not":
            walk(children, depth + 1)
        elif key in ("all", "any"):
            if not isinstance(children, list) or not children:
                errors.append(f"An '{key}' group needs at least one rule")
                return
            for child in children:
                walk(child, depth + 1)
        else:
            errors.append(f"Unknown group {key!r}: use 'all', 'any' or 'not'")

    if condition in (None, {}):
        return
    walk(condition, 0)
    if counter[0] > MAX_RULES:
        errors.append(f"A condition holds at most {MAX_RULES} rules")
    if errors:
        raise ConditionError(errors)


def is_empty(condition: Any) -> bool:
    return condition in (None, {}, "")


# -- compilation --------------------------------------------------------------------------------

_MISSING = object()


def always(_visitor: Any) -> bool:
    """What an empty condition compiles to."""
    return True


def _compile_rule(rule: dict) -> Predicate:
    name, op, value, param = rule["signal"], rule["op"], rule.get("value"), rule.get("param")
    description = describe_rule(rule)
    key = name if param is None else (name, param)
    missing = _MISSING

    def failed() -> bool:  # a failing signal makes its rule false, never the render
        logger.warning("Condition rule %s failed; treated as false", description, exc_info=True)
        return False

    if op == "exists":
        want = value is not False

        def predicate(visitor: Any) -> bool:
            actual = visitor.memo.get(key, missing)
            try:
                if actual is missing:
                    actual = visitor.signal(name, param)
                present = actual is not None and actual != ""
                if present and isinstance(actual, frozenset | set | list | tuple):
                    present = len(actual) > 0
                elif present and hasattr(actual, "any"):
                    present = actual.any()
                return present is want
            except Exception:
                return failed()

        return predicate

    compare = OPERATORS[op]
    if op in ("in", "not_in"):
        value = tuple(value)
    when_none = op in ("ne", "not_in")  # an unknown value is "not" anything, and nothing else

    def predicate(visitor: Any) -> bool:
        # Read the request's memo first: most rules ask for a signal another rule already did.
        actual = visitor.memo.get(key, missing)
        try:
            if actual is missing:
                actual = visitor.signal(name, param)
            if actual is None:
                return when_none
            return compare(actual, value)
        except Exception:
            return failed()

    return predicate


def _compile(node: dict) -> Predicate:
    if "signal" in node:
        return _compile_rule(node)
    (key, children), = node.items()
    if key == "not":
        inner = _compile(children)
        return lambda visitor: not inner(visitor)
    parts = tuple(_compile(child) for child in children)
    if len(parts) == 1:
        return parts[0]
    # Short groups (the usual case) become plain and/or chains: no generator per evaluation.
    if len(parts) == 2:
        a, b = parts
        if key == "all":
            return lambda visitor: a(visitor) and b(visitor)
        return lambda visitor: a(visitor) or b(visitor)
    if len(parts) == 3:
        a, b, c = parts
        if key == "all":
            return lambda visitor: a(visitor) and b(visitor) and c(visitor)
        return lambda visitor: a(visitor) or b(visitor) or c(visitor)
    if key == "all":
        return lambda visitor: all(p(visitor) for p in parts)
    return lambda visitor: any(p(visitor) for p in parts)


_compiled: dict[str, Predicate] = {}


def compile_condition(condition: Any) -> Predicate:
    """Compile once per distinct condition (process-wide cache keyed by its canonical JSON).

    An invalid condition compiles to "never" and is logged: rendering never raises.
    """
    if is_empty(condition):
        return always
    key = json.dumps(condition, sort_keys=True, separators=(",", ":"))
    predicate = _compiled.get(key)
    if predicate is None:
        try:
            validate_condition(condition, check_choices=False)
            predicate = _compile(condition)
        except ConditionError as exc:
            logger.error("Invalid condition %s treated as false: %s", key[:300], exc)
            predicate = _never
        if len(_compiled) > 10000:
            _compiled.clear()
        _compiled[key] = predicate
    return predicate


def _never(_visitor: Any) -> bool:
    return False


def clear_compiled_cache() -> None:
    _compiled.clear()
