"""The one decision function: server rendering, template tags, preview and the fragment API
all call ``decide`` so a visitor sees the same variant whichever path renders the block."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("microadjust_cms.decisions")


@dataclass(frozen=True)
class Decision:
    variant: str  # the variant's name, or "default"
    content: Any
    reason: str  # "match" or "default"


def decide(value: Any, visitor: Any, *, exclude: str | None = None) -> Decision:
    """First matching variant wins; the default is always there. Never raises for a condition:
    a failing rule is false (logged where it failed)."""
    for name, predicate, content in value.variant_specs():
        if name == exclude:
            continue
        try:
            matched = predicate(visitor)
        except Exception:
            logger.warning("Variant %r could not be evaluated; skipped", name, exc_info=True)
            matched = False
        if matched:
            return Decision(name, value.content_of(content), "match")
    return Decision("default", value["default"], "default")
