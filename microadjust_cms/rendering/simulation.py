"""Simulated visitors: what preview modes and ``testutils`` use to show a page "as" someone.

A simulated context answers from overrides first and never reads or writes the profile store.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from ..visitor.context import VisitorContext
from ..visitor.stores import Profile

#: Preview presets editors pick from: mode name → (label, signal overrides).
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "visitor:first": ("First-time desktop visitor", {}),
    "visitor:returning": ("Returning visitor (2nd visit)", {"visits": 2}),
    "visitor:repeat-view": ("Repeat view of this page", {"visits": 1, "page_views": 2}),
    "device:mobile": ("Mobile visitor", {"device": "mobile"}),
    "device:tablet": ("Tablet visitor", {"device": "tablet"}),
    "utm:newsletter": ("From the newsletter (utm_source=newsletter)",
                       {"utm_source": "newsletter", "utm_medium": "email"}),
    "time:morning": ("In the morning", {"time_of_day": "morning", "hour": 9}),
    "time:evening": ("In the evening", {"time_of_day": "evening", "hour": 19}),
    "engagement:high": ("Highly engaged reader", {"engagement_score": 80,
                                                  "engagement_level": "high"}),
    "engagement:low": ("Casual reader", {"engagement_score": 10, "engagement_level": "low"}),
}

PROFILE_FIELDS = {"visits", "visit_pageviews", "page_views", "total_pageviews"}


def simulated_visitor(request: HttpRequest, *, segments: list[str] | None = None,
                      **signals: Any) -> VisitorContext:
    """A visitor context for ``request`` with forced signal values (see ``simulated_overrides``)."""
    return VisitorContext(request, overrides=simulated_overrides(segments=segments, **signals),
                          simulated=True)


def simulated_overrides(*, segments: list[str] | None = None, **signals: Any) -> dict[Any, Any]:
    """Signal overrides for a simulated visitor.

    Profile numbers (``visits``, ``page_views``, ``visit_pageviews``) build a simulated
    profile; ``segments`` forces segment membership; any other keyword forces that signal
    (``query_param`` takes a dict of parameter → value).
    """
    overrides: dict[Any, Any] = {}
    profile_values = {k: signals.pop(k) for k in list(signals) if k in PROFILE_FIELDS}
    visits = int(profile_values.get("visits", 1))
    overrides["profile"] = Profile(
        visits=visits,
        visit_pageviews=int(profile_values.get("visit_pageviews", 1)),
        total_pageviews=int(profile_values.get("total_pageviews", visits)),
        page_views=int(profile_values.get("page_views", 1)),
    )
    for name, value in signals.items():
        if name == "query_param" and isinstance(value, dict):
            for param, param_value in value.items():
                overrides[("query_param", param)] = param_value
        else:
            overrides[name] = value
    if segments is not None:
        overrides["segments"] = frozenset(segments)
    return overrides


def preview_modes_for(default_modes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The page's own modes, then one per preset, per rule segment and per active cluster."""
    from ..segments.clusters import cluster_choices
    from ..segments.membership import rule_segment_choices

    modes = list(default_modes)
    modes += [(name, f"As: {label}") for name, (label, _o) in PRESETS.items()]
    modes += [(f"segment:{slug}", f"As segment: {name}") for slug, name in rule_segment_choices()]
    modes += [(f"cluster:{slug}", f"As cluster: {name}") for slug, name in cluster_choices(retired=False)]
    return modes


def visitor_for_mode(request: HttpRequest, mode_name: str) -> VisitorContext | None:
    if mode_name in PRESETS:
        return simulated_visitor(request, **dict(PRESETS[mode_name][1]))
    if mode_name.startswith("segment:"):
        return simulated_visitor(request, segments=[mode_name.split(":", 1)[1]])
    if mode_name.startswith("cluster:"):  # in that cluster segment, and its ``cluster`` signal
        slug = mode_name.split(":", 1)[1]
        return simulated_visitor(request, segments=[slug], cluster=slug)
    return None
