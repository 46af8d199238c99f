"""The signals every site gets. Request signals read the request; profile signals the store."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.utils.translation import gettext_lazy as _
from user_agents import parse as parse_user_agent

from ..behaviour import engagement_level, engagement_score, top_affinity
from ..conf import get_setting
from .registry import Signal, SignalRegistry

if TYPE_CHECKING:
    from ..visitor.context import VisitorContext

DEVICE_CHOICES = [("mobile", _("Mobile")), ("tablet", _("Tablet")), ("desktop", _("Desktop")),
                  ("bot", _("Bot"))]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
DAY_CHOICES = [(d, _(d.capitalize())) for d in DAYS]


@lru_cache(maxsize=2048)
def device_from_user_agent(user_agent: str) -> str:
    """Classify a User-Agent with the maintained ua-parser rules (cached: parsing is costly)."""
    if not user_agent:
        return "desktop"
    ua = parse_user_agent(user_agent[:1024])
    if ua.is_bot:
        return "bot"
    if ua.is_tablet:
        return "tablet"
    if ua.is_mobile:
        return "mobile"
    return "desktop"


def _device(v: VisitorContext, _p: str | None) -> str:
    return device_from_user_agent(v.request.META.get("HTTP_USER_AGENT", ""))


def _is_authenticated(v: VisitorContext, _p: str | None) -> bool:
    user = getattr(v.request, "user", None)
    return bool(user is not None and user.is_authenticated)


def _user_group(v: VisitorContext, _p: str | None) -> frozenset[str]:
    user = getattr(v.request, "user", None)
    if user is None or not user.is_authenticated:
        return frozenset()
    return frozenset(user.groups.values_list("name", flat=True))


def _language(v: VisitorContext, _p: str | None) -> str | None:
    code = getattr(v.request, "LANGUAGE_CODE", None)
    if code:
        return code.split("-")[0].lower()
    header = v.request.META.get("HTTP_ACCEPT_LANGUAGE", "")
    first = header.split(",", 1)[0].split(";", 1)[0].strip()
    if not first or first == "*":
        return None
    return first.split("-")[0].lower()[:16]


def _referrer_domain(v: VisitorContext, _p: str | None) -> str | None:
    referrer = v.request.META.get("HTTP_REFERER", "")
    if not referrer:
        return None
    try:
        host = urlsplit(referrer).hostname or ""
    except ValueError:
        return None
    host = host.lower()
    return host[4:] if host.startswith("www.") else (host or None)


def _query_value(v: VisitorContext, name: str) -> str | None:
    """What ``request.GET.get(name)`` gives (``VisitorContext.query``)."""
    return v.query.get(name)


def _query(name: str):
    def resolve(v: VisitorContext, _p: str | None) -> str | None:
        value = _query_value(v, name)
        return value.strip().lower()[:200] if value else None

    return resolve


def _query_param(v: VisitorContext, param: str | None) -> str | None:
    if not param:
        return None
    value = _query_value(v, param)
    return value[:200] if value is not None else None


def _time_of_day(v: VisitorContext, _p: str | None) -> str:
    hour = v.now.hour
    current = None
    for name, start in get_setting("TIME_OF_DAY_BUCKETS"):
        if hour >= start:
            current = name
    return current or get_setting("TIME_OF_DAY_BUCKETS")[-1][0]


def _time_of_day_choices() -> list[tuple[str, str]]:
    return [(name, name.capitalize()) for name, _start in get_setting("TIME_OF_DAY_BUCKETS")]


def _hour(v: VisitorContext, _p: str | None) -> int:
    return v.now.hour


def _day_of_week(v: VisitorContext, _p: str | None) -> str:
    return DAYS[v.now.weekday()]


def _profile(attr: str):
    def resolve(v: VisitorContext, _p: str | None) -> Any:
        return getattr(v.profile, attr)

    return resolve


def _is_returning(v: VisitorContext, _p: str | None) -> bool:
    return v.profile.visits > 1


def _engagement_score(v: VisitorContext, _p: str | None) -> int:
    return engagement_score(v.profile.engagement, get_setting("ENGAGEMENT_SCALE"))


def _engagement_level(v: VisitorContext, _p: str | None) -> str:
    return engagement_level(v.signal("engagement_score"), get_setting("ENGAGEMENT_LEVELS"))


def _content_affinity(v: VisitorContext, _p: str | None) -> str | None:
    return top_affinity(v.profile.affinity, get_setting("AFFINITY_MIN_POINTS"))


def _abandoned(v: VisitorContext, block: str | None) -> bool:
    return bool(block) and block in v.profile.abandoned


def _clicked(v: VisitorContext, block: str | None) -> bool:
    return bool(block) and block in v.profile.clicked


def _days_since_last_visit(v: VisitorContext, _p: str | None) -> int | None:
    ended = v.profile.last_visit_end
    return int((time.time() - ended) // 86400) if ended else None


ENGAGEMENT_CHOICES = [("low", _("Low")), ("medium", _("Medium")), ("high", _("High"))]


BUILTINS = [
    Signal("device", "string", _device, _("Device"), choices=DEVICE_CHOICES,
           help_text=_("From the User-Agent (ua-parser rules).")),
    Signal("is_authenticated", "boolean", _is_authenticated, _("Logged in"),
           help_text=_("A user is logged in (Django's session authentication).")),
    Signal("user_group", "set", _user_group, _("User group"),
           help_text=_("Names of the logged-in user's groups.")),
    Signal("language", "string", _language, _("Language"),
           help_text=_("Primary language subtag, e.g. 'en'.")),
    Signal("referrer_domain", "string", _referrer_domain, _("Referrer domain"),
           help_text=_("Host of the Referer header without 'www.'.")),
    Signal("utm_source", "string", _query("utm_source"), _("UTM source"),
           help_text=_("The utm_source query parameter of this request, lower-cased.")),
    Signal("utm_medium", "string", _query("utm_medium"), _("UTM medium"),
           help_text=_("The utm_medium query parameter of this request, lower-cased.")),
    Signal("utm_campaign", "string", _query("utm_campaign"), _("UTM campaign"),
           help_text=_("The utm_campaign query parameter of this request, lower-cased.")),
    Signal("query_param", "string", _query_param, _("Query parameter"),
           param_label=_("Parameter name"),
           help_text=_("The named query parameter of this request, as sent (its last value).")),
    Signal("time_of_day", "string", _time_of_day, _("Time of day"), choices=_time_of_day_choices,
           help_text=_("In the site's time zone.")),
    Signal("hour", "integer", _hour, _("Hour of day"), help_text=_("0-23, site time zone.")),
    Signal("day_of_week", "string", _day_of_week, _("Day of week"), choices=DAY_CHOICES,
           help_text=_("In the site's time zone.")),
    Signal("visit_count", "integer", _profile("visits"), _("Visit count"), needs_profile=True,
           help_text=_("Visits so far, this one included. 30 idle minutes end a visit.")),
    Signal("is_returning", "boolean", _is_returning, _("Returning visitor"), needs_profile=True,
           help_text=_("True from the second visit on.")),
    Signal("session_pageviews", "integer", _profile("visit_pageviews"),
           _("Page views this visit"), needs_profile=True,
           help_text=_("Pages viewed in this visit, this one included.")),
    Signal("page_views", "integer", _profile("page_views"), _("Views of this page"),
           needs_profile=True,
           help_text=_("How often this visitor has viewed this page, this view included: "
                       "2 or more is a repeat view.")),
    Signal("engagement_score", "integer", _engagement_score, _("Engagement score"),
           needs_profile=True,
           help_text=_("0-100 from impressions, dwell, clicks and conversions; points halve "
                       "every 14 days (see the docs: Tracking).")),
    Signal("engagement_level", "string", _engagement_level, _("Engagement level"),
           choices=ENGAGEMENT_CHOICES, needs_profile=True,
           help_text=_("Low below 30, medium below 60, high from 60 (engagement score).")),
    Signal("content_affinity", "string", _content_affinity, _("Content affinity"),
           needs_profile=True,
           help_text=_("The content type or tag (declared by blocks) this visitor engages "
                       "with most, e.g. 'video'.")),
    Signal("scroll_depth", "integer", _profile("page_scroll"), _("Scroll depth on this page"),
           needs_profile=True,
           help_text=_("Deepest milestone reached on this page (0, 25, 50, 75, 90, 100).")),
    Signal("dwell_seconds", "number", _profile("page_dwell"), _("Dwell seconds on this page"),
           needs_profile=True,
           help_text=_("Seconds this visitor's tracked blocks on this page were in view, "
                       "summed over blocks and views.")),
    Signal("abandoned", "boolean", _abandoned, _("Block abandoned"), needs_profile=True,
           param_label=_("Block id ('this' for this block)"), param_is_block=True,
           help_text=_("The visitor scrolled past the block without engaging.")),
    Signal("clicked", "boolean", _clicked, _("Block clicked"), needs_profile=True,
           param_label=_("Block id ('this' for this block)"), param_is_block=True,
           help_text=_("The visitor clicked a link or button in the block.")),
    Signal("conversions", "integer", _profile("conversions"), _("Conversions"),
           needs_profile=True, help_text=_("Goals reached (data-ma-goal, microadjust.goal).")),
    Signal("days_since_last_visit", "integer", _days_since_last_visit,
           _("Days since last visit"), needs_profile=True,
           help_text=_("Whole days since the previous visit ended; unset on a first visit.")),
]


def register_builtins(registry: SignalRegistry) -> None:
    """The request and profile signals; segments, learning and experiments contribute theirs
    from their own packages (``apps.ready``)."""
    for signal in BUILTINS:
        registry.register(signal, replace=True)
