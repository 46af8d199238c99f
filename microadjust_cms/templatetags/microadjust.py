"""``{% load microadjust %}``: personalize parts of your own templates.

- ``{% ifvisitor segment="returning-readers" %}…{% else %}…{% endifvisitor %}``
- ``{% ifvisitor signal="device" op="eq" value="mobile" %}…{% endifvisitor %}``
  (``param="ref"`` for ``query_param``; ``name="…"`` names the adjustment in reports)
- ``{% render_personalized value %}`` renders a PersonalizedBlock value for this visitor.
- ``{% visitor_signal "device" as device %}`` reads one signal.
- ``{% microadjust_tracker %}`` includes the behaviour tracker (``tracker.js``) and its settings.
"""

from __future__ import annotations

import logging
from typing import Any

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template.base import FilterExpression, Node, NodeList, Parser, Token
from django.utils.safestring import SafeString, mark_safe

from ..conditions import ConditionError, compile_condition, validate_condition
from ..conf import get_setting
from ..experiments.recording import expose
from ..segments.membership import segment_stamp
from ..signals.registry import registry
from ..tracking.schema import MAX_SEGMENTS, MAX_SEGMENTS_LENGTH
from ..visitor.context import get_visitor
from ..visitor.stores import StoreUnavailable

register = template.Library()
logger = logging.getLogger("microadjust_cms.templatetags")

ALLOWED_KWARGS = {"segment", "signal", "op", "value", "param", "name"}


def tag_rule(values: dict[str, Any]) -> dict:
    """A condition rule from tag arguments. Template values are text, so they are coerced to
    the signal's type; ``in`` / ``not_in`` / ``between`` take comma-separated lists."""
    if "segment" in values:
        return {"signal": "segment", "op": "contains", "value": str(values["segment"])}
    name, op = values.get("signal"), values.get("op", "eq")
    rule: dict[str, Any] = {"signal": name, "op": op}
    signal = registry.get(name) if isinstance(name, str) else None
    kind = signal.type if signal else "string"

    def coerce(item: Any) -> Any:
        if isinstance(item, str):
            item = item.strip()
            if kind == "integer" and item.lstrip("-").isdigit():
                return int(item)
            if kind == "number":
                try:
                    return float(item)
                except ValueError:
                    return item
            if kind == "boolean" and item.lower() in ("true", "false"):
                return item.lower() == "true"
        return item

    if "value" in values:
        value = values["value"]
        if op in ("in", "not_in", "between") and isinstance(value, str):
            rule["value"] = [coerce(part) for part in value.split(",")]
        elif op == "exists":
            rule["value"] = coerce(value) if not isinstance(value, bool) else value
        else:
            rule["value"] = coerce(value)
    if values.get("param"):
        rule["param"] = str(values["param"])
    return rule


def _predicate_and_name(values: dict[str, Any]) -> tuple[Any, str, str | None]:
    """The compiled test, the adjustment's name, and the experiment's slug when the test is
    about an experiment's arm (``signal="experiment_arm" param=<slug>``)."""
    condition = tag_rule(values)
    name = values.get("name") or "tag:" + (
        values.get("segment") or f"{condition['signal']}.{condition['op']}")
    experiment = condition.get("param") if condition.get("signal") == "experiment_arm" else None
    return compile_condition(condition), str(name), experiment  # invalid → never, and logged


class IfVisitorNode(Node):
    def __init__(self, kwargs: dict[str, FilterExpression], nodelist_true: NodeList,
                 nodelist_false: NodeList, literal: dict[str, Any] | None) -> None:
        self.kwargs = kwargs
        self.nodelist_true = nodelist_true
        self.nodelist_false = nodelist_false
        # All-literal arguments: the test is compiled once, with the template.
        self.fixed = _predicate_and_name(literal) if literal is not None else None

    def render(self, context: template.Context) -> SafeString:
        request = context.get("request")
        matched = False
        if request is not None:
            predicate, name, experiment = self.fixed or _predicate_and_name(
                {k: v.resolve(context) for k, v in self.kwargs.items()})
            visitor = get_visitor(request)
            if experiment:
                # The arm test is the experiment's block: as for a bound PersonalizedBlock, an
                # enrolled visitor it renders for is exposed, whichever branch shows (the
                # holdout and QA testers are not enrolled, or not counted: see ``assign``).
                matched = predicate(visitor)
                expose(visitor, experiment)
                visitor.record_adjustment(name, "match" if matched else "else")
            elif getattr(visitor, "held_out", False):  # the holdout (QA testers excepted): no adjustment
                visitor.record_adjustment(name, "else", "holdout")
            else:
                matched = predicate(visitor)
                visitor.record_adjustment(name, "match" if matched else "else")
        nodelist = self.nodelist_true if matched else self.nodelist_false
        return nodelist.render(context)


@register.tag("ifvisitor")
def do_ifvisitor(parser: Parser, token: Token) -> IfVisitorNode:
    bits = token.split_contents()
    tag = bits[0]
    kwargs: dict[str, FilterExpression] = {}
    for bit in bits[1:]:
        key, sep, expr = bit.partition("=")
        if not sep or key not in ALLOWED_KWARGS:
            raise template.TemplateSyntaxError(
                f"{tag} takes keyword arguments among {sorted(ALLOWED_KWARGS)}; got {bit!r}")
        kwargs[key] = parser.compile_filter(expr)
    if ("segment" in kwargs) == ("signal" in kwargs):
        raise template.TemplateSyntaxError(f"{tag} needs either segment=… or signal=…")
    literal = {}
    for key, expr in kwargs.items():
        if expr.filters:
            continue
        if not isinstance(expr.var, template.Variable):
            literal[key] = str(expr.var)
        elif expr.var.literal is not None:
            literal[key] = expr.var.literal
    if "signal" in kwargs and len(literal) == len(kwargs):
        rule = tag_rule(literal)
        try:  # literal conditions are checked when the template compiles, not at render
            validate_condition(rule, check_choices=False)
        except ConditionError as exc:
            raise template.TemplateSyntaxError(f"{tag}: {exc}") from None
    nodelist_true = parser.parse(("else", "end" + tag))
    token = parser.next_token()
    if token.contents == "else":
        nodelist_false = parser.parse(("end" + tag,))
        parser.delete_first_token()
    else:
        nodelist_false = NodeList()
    all_literal = len(literal) == len(kwargs)
    return IfVisitorNode(kwargs, nodelist_true, nodelist_false, literal if all_literal else None)


@register.simple_tag(takes_context=True)
def render_personalized(context: template.Context, value: Any) -> str:
    """Render a PersonalizedBlock value (or a StreamField child holding one) for this visitor."""
    block_value = getattr(value, "value", value)
    block = getattr(block_value, "block", None)
    if block is None:
        raise template.TemplateSyntaxError("render_personalized expects a PersonalizedBlock value")
    return block.render(block_value, context=context.flatten())


@register.simple_tag(takes_context=True)
def visitor_signal(context: template.Context, name: str, param: str | None = None) -> Any:
    request = context.get("request")
    if request is None:
        return None
    try:
        return get_visitor(request).signal(name, param)
    except Exception:
        logger.warning("Signal %r failed in a template", name, exc_info=True)
        return None


#: (urlconf, script prefix) → (collect URL, fragment URL, tracker.js URL), or None when
#: microadjust_cms.urls is not included. Reversing and the static URL cost a few percent of a
#: small page, and they change only with the settings (the cache is cleared then).
_tracker_urls: dict[Any, tuple[str, str, str] | None] = {}


@receiver(setting_changed)
def _clear_tracker_urls(**_kwargs: Any) -> None:
    _tracker_urls.clear()


def tracker_urls() -> tuple[str, str, str] | None:
    from django.templatetags.static import static
    from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse

    key = (get_urlconf(), get_script_prefix())
    if key not in _tracker_urls:
        try:
            urls = (reverse("microadjust:collect"), reverse("microadjust:fragment"),
                    static("microadjust_cms/js/tracker.js"))
        except NoReverseMatch:
            urls = None
        _tracker_urls[key] = urls
    return _tracker_urls[key]


def _segment_stamp(request: Any) -> str:
    """The visitor's segments for analytics (``Event.segments``), on pages that adjusted
    something only: a page without personalization never loads the profile for it."""
    visitor = getattr(request, "visitor", None)
    if visitor is None or not visitor.adjusted or not get_setting("ANALYTICS_SEGMENTS"):
        return ""
    try:
        return segment_stamp(visitor, limit=MAX_SEGMENTS, length=MAX_SEGMENTS_LENGTH)
    except StoreUnavailable:
        return ""  # the profile store is down: events go unstamped, the page still renders


@register.simple_tag(takes_context=True)
def microadjust_tracker(context: template.Context) -> str:
    """The tracker script and its settings (through ``json_script``, no inline globals).

    Nothing at all under Do Not Track / GPC: such visitors are not tracked, so the script has
    nothing to do. With consent required the script loads but sends nothing until the site
    calls ``microadjust.consent(true)``.
    """
    from django.http import HttpRequest
    from django.utils.html import format_html, json_script

    from ..visitor.context import opted_out

    request = context.get("request")
    if not isinstance(request, HttpRequest) or opted_out(request):
        return mark_safe("")
    urls = tracker_urls()
    if urls is None:
        logger.warning("{% microadjust_tracker %}: include microadjust_cms.urls to collect events")
        return mark_safe("")
    endpoint, fragment, script = urls
    page = context.get("page")
    config = {
        "endpoint": endpoint,
        "page": getattr(page, "pk", None),
        "path": request.path[:200],
        "dnt": get_setting("HONOUR_DNT"),
        "consent": get_setting("REQUIRE_CONSENT"),
        "consentCookie": get_setting("CONSENT_COOKIE_NAME"),
        "impressionMs": get_setting("TRACKER_IMPRESSION_MS"),
        "abandonMs": get_setting("TRACKER_ABANDON_DWELL_MS"),
        "flushMs": get_setting("TRACKER_FLUSH_MS"),
        "fragment": fragment,
        "swapCap": get_setting("TRIGGER_FREQUENCY_CAP"),
    }
    segments = _segment_stamp(request)
    if segments:
        config["seg"] = segments
    return format_html('{}<script src="{}" defer></script>',
                       json_script(config, "microadjust-config"), script)
