"""The Experiment and ExclusionGroup snippets (in the Personalization menu)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from wagtail.admin import messages
from wagtail.admin.panels import FieldPanel, FieldRowPanel, HelpPanel, InlinePanel, MultiFieldPanel
from wagtail.snippets.views.snippets import SnippetViewSet

from ..experiments.models import ExclusionGroup, Experiment
from .experiment_audit import ExperimentCopyView, ExperimentEditView
from .menu import MENU_HOOK


class ExperimentViewSet(SnippetViewSet):
    model = Experiment
    icon = "tasks"
    menu_label = "Experiments"
    menu_order = 150
    menu_hook = MENU_HOOK
    list_display = ["name", "slug", "status", "starts_at", "ends_at", "priority"]
    list_filter = ["status"]
    search_fields = ["name", "slug", "hypothesis"]
    panels = [
        FieldPanel("name"),
        FieldPanel("slug"),
        FieldPanel("hypothesis"),
        # Changed only by the report's start / pause / finish buttons (permissions, audit trail).
        FieldPanel("status", read_only=True),
        FieldRowPanel([FieldPanel("starts_at"), FieldPanel("ends_at")]),
        MultiFieldPanel([FieldPanel("goal_type"), FieldPanel("goal_name"), FieldPanel("goal_threshold")],
                        heading="Goal"),
        InlinePanel("arms", heading="Arms", label="Arm", min_num=2),
        MultiFieldPanel([FieldPanel("traffic_percent"), FieldPanel("exclusion_group"), FieldPanel("group_share"),
                         FieldPanel("priority")], heading="Traffic"),
        # -- report (experiments/report.py, admin_views.py) --
        MultiFieldPanel([FieldPanel("analysis_method"),
                         HelpPanel(template="microadjust_cms/experiments/sample_size_panel.html")],
                        heading="Analysis and sample size"),
    ]
    edit_view_class = ExperimentEditView
    copy_view_class = ExperimentCopyView


class ExclusionGroupViewSet(SnippetViewSet):
    model = ExclusionGroup
    icon = "cut"
    menu_label = "Exclusion groups"
    menu_order = 160
    menu_hook = MENU_HOOK
    list_display = ["name", "description"]
    panels = [FieldPanel("name"), FieldPanel("description")]


def refuse_deleting_groups_in_use(request: Any, instances: list[Any]) -> HttpResponse | None:
    """For the ``before_delete_snippet`` hook: a redirect with a message when one of the
    exclusion groups has a running or paused experiment, else None (the delete goes on)."""
    groups = [g for g in instances if isinstance(g, ExclusionGroup)]
    started = (Experiment.objects.filter(exclusion_group__in=groups,
                                         status__in=[Experiment.Status.RUNNING, Experiment.Status.PAUSED])
               .select_related("exclusion_group").first() if groups else None)
    if started is None:
        return None
    messages.error(request, _("The exclusion group %(group)s cannot be deleted while its experiment "
                              "%(experiment)s is running or paused: finish it first.") % {
        "group": started.exclusion_group, "experiment": started})
    return HttpResponseRedirect(reverse("wagtailsnippets_microadjust_cms_exclusiongroup:list"))
