"""The "Event pipeline" admin page: the sink's backlog, the loader's lag, the newest dead
letters and the event partitions (a leaf: only ``wagtail_hooks`` imports this)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView
from wagtail.admin.auth import permission_denied
from wagtail.admin.menu import MenuItem
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin

from ..tracking.pipeline_status import pipeline_status
from .jobs import can_view


class EventPipelineView(WagtailAdminTemplateMixin, TemplateView):
    template_name = "microadjust_cms/admin/event_pipeline.html"
    header_icon = "resubmit"
    page_title = gettext_lazy("Event pipeline")

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_view(request.user):
            return permission_denied(request)
        return super().dispatch(request, *args, **kwargs)

    def get_page_title(self) -> str:
        return _("Event pipeline")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["status"] = pipeline_status()
        return context


class PipelineMenuItem(MenuItem):
    def is_shown(self, request: HttpRequest) -> bool:
        return can_view(request.user)


def menu_item() -> MenuItem:
    return PipelineMenuItem(_("Event pipeline"), reverse("microadjust_pipeline:index"),
                            icon_name="resubmit", order=510)


urlpatterns = [path("", EventPipelineView.as_view(), name="index")]
