"""Everything Wagtail-facing: the Segment snippet, the editor's catalogue URL, page hooks."""

from __future__ import annotations

from django.urls import include, path
from wagtail import hooks
from wagtail.admin.panels import FieldPanel
from wagtail.snippets.models import register_snippet
from wagtail.snippets.views.snippets import SnippetViewSet

from . import admin_views
from .context import get_visitor
from .models import Segment


class SegmentViewSet(SnippetViewSet):
    model = Segment
    icon = "group"
    menu_label = "Segments"
    menu_order = 250
    add_to_admin_menu = True
    list_display = ["name", "slug", "description", "updated_at"]
    search_fields = ["name", "slug", "description"]
    panels = [
        FieldPanel("name"),
        FieldPanel("slug"),
        FieldPanel("description"),
        FieldPanel("condition"),
    ]


register_snippet(SegmentViewSet)


@hooks.register("register_admin_urls")
def register_admin_urls():
    urls = [path("signals.json", admin_views.signal_catalogue, name="signals")]
    return [path("microadjust/", include((urls, "microadjust_admin"), namespace="microadjust_admin"))]


@hooks.register("before_serve_page")
def note_served_page(page, request, serve_args, serve_kwargs):
    """Page views are counted per page id (the repeat-visit signal)."""
    get_visitor(request).set_page(page)


# -- Engagement models (learning/engagement.py): the list of trained versions --------------------


@hooks.register("register_admin_viewset")
def register_engagement_model_viewset():
    from .engagement_admin import engagement_model_viewset

    return engagement_model_viewset
