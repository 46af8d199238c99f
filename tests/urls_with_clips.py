"""The demo site plus ``/clips/``: a page of video and deal blocks, rendered by the real
``PersonalizedBlock``. The demo's own pages hold articles and news only (until a ranked list
of other content types is added), and the traffic tests need video and deal blocks to show that
the hidden types react to content types."""

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import path
from django.utils.safestring import mark_safe

from microadjust_cms.rendering.blocks import PersonalizedBlock
from project.demo.blocks import CardBlock
from project.urls import urlpatterns as site_urlpatterns

VIDEO = PersonalizedBlock(CardBlock(), content_type="video", tags=("sport",))
DEAL = PersonalizedBlock(CardBlock(), content_type="deal", tags=("shoes",))
PAGE = engines["django"].from_string(
    "{% load microadjust %}<!DOCTYPE html><html><body><main>{{ blocks }}</main>"
    "{% microadjust_tracker %}</body></html>")


def card(block_id: str, title: str, label: str) -> dict:
    return {"block_id": block_id, "variants": [],
            "default": {"title": title, "text": "", "link_label": label, "link_url": "#" + block_id}}


def clips(request: HttpRequest) -> HttpResponse:
    rendered = [VIDEO.render(VIDEO.to_python(card(f"clip-{n}", f"Clip {n}", "Play")),
                             context={"request": request}) for n in range(1, 4)]
    rendered.append(DEAL.render(DEAL.to_python(card("deal-1", "Half price", "Buy now")),
                                context={"request": request}))
    return HttpResponse(PAGE.render({"blocks": mark_safe("".join(rendered))}, request))


urlpatterns = [path("clips/", clips), *site_urlpatterns]
