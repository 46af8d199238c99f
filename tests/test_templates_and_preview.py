import pytest
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory

from microadjust_cms.segments.models import Segment
from microadjust_cms.testutils import as_visitor, override_signal
from microadjust_cms.visitor.context import VisitorContext

from .conftest import MOBILE_UA
from .helpers import variants


def render(source, request):
    request.visitor = VisitorContext(request)
    return Template("{% load microadjust %}" + source).render(Context({"request": request}))


@pytest.fixture
def rf():
    return RequestFactory()


def test_ifvisitor_signal_with_else(rf):
    source = '{% ifvisitor signal="device" op="eq" value="mobile" %}M{% else %}D{% endifvisitor %}'
    assert render(source, rf.get("/", HTTP_USER_AGENT=MOBILE_UA)) == "M"
    assert render(source, rf.get("/")) == "D"


def test_ifvisitor_records_an_adjustment(rf):
    request = rf.get("/?utm_source=newsletter")
    request.visitor = VisitorContext(request)
    Template('{% load microadjust %}{% ifvisitor signal="utm_source" value="newsletter" '
             'name="promo" %}x{% endifvisitor %}').render(Context({"request": request}))
    assert [(a.block_id, a.variant) for a in request.visitor.adjustments] == [("promo", "match")]


def test_ifvisitor_coerces_numbers_and_lists(rf):
    source = ('{% ifvisitor signal="hour" op="between" value="0,23" %}yes{% endifvisitor %}'
              '{% ifvisitor signal="device" op="in" value="tablet,desktop" %}+{% endifvisitor %}')
    assert render(source, rf.get("/")) == "yes+"


def test_ifvisitor_query_param(rf):
    source = '{% ifvisitor signal="query_param" param="ref" value="ad" %}ad{% endifvisitor %}'
    assert render(source, rf.get("/?ref=ad")) == "ad"
    assert render(source, rf.get("/?ref=other")) == ""


def test_ifvisitor_with_variables(rf):
    request = rf.get("/", HTTP_USER_AGENT=MOBILE_UA)
    request.visitor = VisitorContext(request)
    template = Template('{% load microadjust %}{% ifvisitor signal=name value=wanted %}'
                        'ok{% endifvisitor %}')
    assert template.render(Context({"request": request, "name": "device", "wanted": "mobile"})) == "ok"
    # an invalid condition from variables is false at render, never an exception
    assert template.render(Context({"request": request, "name": "nope", "wanted": "x"})) == ""


@pytest.mark.parametrize("source, message", [
    ('{% ifvisitor signal="shoe_size" value="3" %}{% endifvisitor %}', "unknown signal"),
    ('{% ifvisitor signal="device" op="gte" value="x" %}{% endifvisitor %}', "does not apply"),
    ('{% ifvisitor %}{% endifvisitor %}', "either segment"),
    ('{% ifvisitor colour="red" %}{% endifvisitor %}', "keyword arguments"),
])
def test_literal_mistakes_fail_when_the_template_compiles(source, message):
    with pytest.raises(TemplateSyntaxError, match=message):
        Template("{% load microadjust %}" + source)


@pytest.mark.django_db
def test_ifvisitor_segment_and_visitor_signal(rf):
    Segment.objects.create(name="Mobile", slug="mobile", condition={
        "signal": "device", "op": "eq", "value": "mobile"})
    source = ('{% ifvisitor segment="mobile" %}in{% else %}out{% endifvisitor %}'
              '{% visitor_signal "device" as d %}/{{ d }}')
    assert render(source, rf.get("/", HTTP_USER_AGENT=MOBILE_UA)) == "in/mobile"
    assert render(source, rf.get("/")) == "out/desktop"


@pytest.mark.django_db
def test_segment_edits_reach_render_without_restart(rf):
    segment = Segment.objects.create(name="Mobile", slug="mobile", condition={
        "signal": "device", "op": "eq", "value": "mobile"})
    source = '{% ifvisitor segment="mobile" %}in{% else %}out{% endifvisitor %}'
    assert render(source, rf.get("/")) == "out"
    segment.condition = {"signal": "device", "op": "eq", "value": "desktop"}
    segment.save()
    assert render(source, rf.get("/")) == "in"


@pytest.mark.django_db
def test_render_personalized_tag(client, demo):
    from project.demo.models import HomePage

    home = HomePage.objects.get()
    child = next(c for c in home.body if c.block_type == "personalized_banner")
    factory = RequestFactory()
    request = factory.get("/", HTTP_USER_AGENT=MOBILE_UA)
    request.visitor = VisitorContext(request)
    html = Template("{% load microadjust %}{% render_personalized block %}").render(
        Context({"request": request, "block": child}))
    assert 'data-ma-block="mobile-banner" data-ma-variant="mobile"' in html


@pytest.mark.django_db
def test_testutils_as_visitor_and_override_signal(client, demo):
    with as_visitor(client, device="mobile", visits=3, page_views=2,
                    utm_source="newsletter", segments=["loyal-readers"]):
        home = variants(client.get("/"))
        article = variants(client.get("/article/"))
    recommended = {block: variant for block, variant in home.items() if block.startswith("recommended-")}
    assert len(recommended) == 8 and set(recommended.values()) == {"editor"}  # no model: editor's order
    home = {block: variant for block, variant in home.items() if block not in recommended}
    assert home == {"mobile-banner": "mobile", "welcome-hero": "returning",
                    "greeting": home["greeting"], "fresh-content": "repeat-view",
                    "newsletter-offer": "newsletter"}
    assert article["loyal-readers-section"] == "loyal"
    with override_signal("utm_source", "newsletter"):
        assert variants(client.get("/"))["newsletter-offer"] == "newsletter"
    assert variants(client.get("/"))["newsletter-offer"] == "default"


@pytest.mark.django_db
def test_preview_modes_show_the_page_as_a_segment_or_simulated_visitor(demo, admin_user):
    home, article = demo["home"], demo["article"]
    modes = dict(home.preview_modes)
    assert modes["segment:loyal-readers"] == "As segment: Loyal readers"
    assert "device:mobile" in modes and "visitor:returning" in modes

    def preview(page, mode):
        # make_preview_request builds a representative request and serves the preview with it
        response = page.make_preview_request(preview_mode=mode)
        if hasattr(response, "render"):
            response.render()
        return variants(response)

    assert preview(article, "segment:loyal-readers")["loyal-readers-section"] == "loyal"
    assert preview(article, home.default_preview_mode)["loyal-readers-section"] == "default"
    assert preview(home, "device:mobile")["mobile-banner"] == "mobile"
    assert preview(home, "visitor:repeat-view")["fresh-content"] == "repeat-view"
    assert preview(home, "visitor:returning")["welcome-hero"] == "returning"
    assert preview(home, "utm:newsletter")["newsletter-offer"] == "newsletter"
    assert preview(home, "time:evening")["greeting"] == "evening"
    assert preview(article, "engagement:high")["story-depth"] == "in-depth"
    assert preview(article, "engagement:low")["story-depth"] == "default"


@pytest.mark.django_db
def test_custom_signal_from_the_hook(client, demo):
    from microadjust_cms.signals.registry import registry

    assert registry.get("newsletter_subscriber").type == "boolean"
    request = RequestFactory().get("/")
    request.COOKIES["newsletter"] = "subscribed"
    assert render('{% ifvisitor signal="newsletter_subscriber" value="true" %}yes{% endifvisitor %}',
                  request) == "yes"
