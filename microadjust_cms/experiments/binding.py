"""Which variants of a personalized block are bound to which experiment arms.

Read from the variants' conditions when the block's program is compiled (plain Python, once per
block revision): a leaf ``{"signal": "experiment_arm", "param": <slug>, "op": "eq" | "in",
"value": <arm name(s)>}`` binds its variant to those arms.
"""

from __future__ import annotations

from typing import Any

from ..conditions import rules_over

SIGNAL = "experiment_arm"

#: slug → arm name → names of the variants bound to that arm.
Bindings = dict[str, dict[str, frozenset[str]]]


def bound_arms(condition: Any) -> dict[str, set[str]]:
    """slug → arm names the condition requires (``eq`` and ``in`` leaves; a ``not`` around one
    is not a binding and is ignored)."""
    found: dict[str, set[str]] = {}
    if not condition:
        return found
    for leaf in rules_over(_without_negations(condition), SIGNAL):
        slug, op, value = leaf.get("param"), leaf.get("op"), leaf.get("value")
        if not isinstance(slug, str) or not slug:
            continue
        if op == "eq" and isinstance(value, str) and value:
            found.setdefault(slug, set()).add(value)
        elif op == "in" and isinstance(value, list):
            found.setdefault(slug, set()).update(v for v in value if isinstance(v, str) and v)
    return found


def _without_negations(condition: Any) -> Any:
    if isinstance(condition, dict):
        return {k: _without_negations(v) for k, v in condition.items() if k != "not"}
    if isinstance(condition, list):
        return [_without_negations(v) for v in condition]
    return condition


def block_bindings(variants: list[tuple[str, Any]]) -> Bindings:
    """From (variant name, condition) pairs, in order."""
    bindings: dict[str, dict[str, set[str]]] = {}
    for name, condition in variants:
        for slug, arms in bound_arms(condition).items():
            for arm in arms:
                bindings.setdefault(slug, {}).setdefault(arm, set()).add(name)
    return {slug: {arm: frozenset(names) for arm, names in arms.items()} for slug, arms in bindings.items()}
