"""Everything Wagtail-facing: the Segment snippet, the editor's catalogue URL, page hooks."""

from __future__ import annotations

from django.urls import include, path
from wagtail import hooks
from wagtail.admin.panels import FieldPanel
from wagtail.snippets.models import register_snippet
from wagtail.snippets.views.snippets import SnippetViewSet

from ..segments.models import Segment
from ..visitor.context import get_visitor
from . import conditions as admin_views
from .menu import MENU_HOOK, personalization_menu_item


class SegmentViewSet(SnippetViewSet):
    model = Segment
    icon = "group"
    menu_label = "Segments"
    menu_order = 100
    menu_hook = MENU_HOOK
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


# --- Learning jobs (issue 4, Celery section) ---------------------------------------------------

@hooks.register("register_admin_urls")
def register_learning_job_urls():
    from . import jobs as admin_jobs

    return [path("microadjust/jobs/", include((admin_jobs.urlpatterns, "microadjust_jobs"),
                                              namespace="microadjust_jobs"))]


@hooks.register("register_admin_urls")
def register_pipeline_urls():
    from . import pipeline

    return [path("microadjust/pipeline/", include((pipeline.urlpatterns, "microadjust_pipeline"),
                                                  namespace="microadjust_pipeline"))]


@hooks.register("register_admin_urls")
def register_analytics_report_urls():
    from . import analytics

    return [path("microadjust/reports/personalization/",
                 include((analytics.urlpatterns, "microadjust_reports"), namespace="microadjust_reports"))]


@hooks.register("register_admin_urls")
def register_optimization_urls():
    from . import optimization

    return [path("microadjust/optimize/", include((optimization.urlpatterns, "microadjust_optimize"),
                                                  namespace="microadjust_optimize"))]


@hooks.register(MENU_HOOK)
def register_optimization_menu_item():
    from . import optimization

    return optimization.menu_item()


@hooks.register("register_admin_urls")
def register_erasure_urls():
    from . import erasure

    return [path("microadjust/forget/", include((erasure.urlpatterns, "microadjust_forget"),
                                                namespace="microadjust_forget"))]


@hooks.register(MENU_HOOK)
def register_erasure_menu_item():
    from . import erasure

    return erasure.menu_item()


@hooks.register("insert_editor_js")
def block_figures_link_js():
    from django.templatetags.static import static
    from django.urls import reverse
    from django.utils.html import format_html

    base = reverse("microadjust_reports:page", args=[0]).rsplit("0/", 1)[0]
    return format_html('<script src="{}" data-ma-report-base="{}"></script>',
                       static("microadjust_cms/js/block-figures.js"), base)


@hooks.register("construct_homepage_panels")
def add_anomalies_panel(request, panels):
    from . import analytics

    panels.append(analytics.AnomaliesPanel())


@hooks.register("register_reports_menu_item")
def register_analytics_report_menu_item():
    from . import analytics

    return analytics.menu_item()


@hooks.register(MENU_HOOK)
def register_pipeline_menu_item():
    from . import pipeline

    return pipeline.menu_item()


@hooks.register("register_admin_menu_item")
def register_personalization_menu():
    return personalization_menu_item()


@hooks.register(MENU_HOOK)
def register_learning_jobs_menu_item():
    from . import jobs as admin_jobs

    return admin_jobs.menu_item()


@hooks.register("register_permissions")
def register_learning_job_permissions():
    """Offered in Settings → Groups: see the Learning jobs page, press its buttons."""
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="microadjust_cms",
                                     codename__in=["view_learningjob", "run_learning_jobs"])


# -- Clustering: clusters editors rename, and the runs ---------------------------------------

@hooks.register("register_admin_viewset")
def register_clustering_viewsets():
    from .clusters import cluster_run_viewset, cluster_viewset

    return [cluster_viewset, cluster_run_viewset]


# -- Engagement models (learning/engagement.py): the list of trained versions --------------------


@hooks.register("register_admin_viewset")
def register_engagement_model_viewset():
    from .engagement import engagement_model_viewset

    return engagement_model_viewset


# -- Experiments (experiments/): the Experiment and ExclusionGroup snippets ---------------------

def _register_experiment_snippets() -> None:
    from .experiments import ExclusionGroupViewSet, ExperimentViewSet

    register_snippet(ExperimentViewSet)
    register_snippet(ExclusionGroupViewSet)


_register_experiment_snippets()


# -- Experiment report (experiments/admin_views.py): report, CSV, actions, audit trail ----------

@hooks.register("register_admin_urls")
def register_experiment_report_urls():
    from . import experiment_reports as experiment_views

    return [path("microadjust/experiments/", include((experiment_views.urlpatterns, "microadjust_experiments"),
                                                     namespace="microadjust_experiments"))]


@hooks.register("register_log_actions")
def register_experiment_log_actions(actions):
    from .experiment_audit import register_actions

    register_actions(actions)


@hooks.register("register_permissions")
def register_experiment_permissions():
    """Offered in Settings → Groups: the report's start, pause / resume and finish buttons."""
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="microadjust_cms",
                                     codename__in=["start_experiment", "pause_experiment", "finish_experiment"])


@hooks.register("register_snippet_listing_buttons")
def experiment_report_listing_button(snippet, user, next_url=None):
    from wagtail.admin.widgets import ListingButton

    from ..experiments.models import Experiment
    from .experiment_reports import can_view, report_url

    if isinstance(snippet, Experiment) and can_view(user):
        yield ListingButton("Report", report_url(snippet), icon_name="table", priority=5)


@hooks.register("before_delete_snippet")
def keep_exclusion_groups_in_use(request, instances):
    """Deleting a group would drop its running experiments' slices, and with them exclusivity:
    refused (single and bulk delete) while one of its experiments is running or paused."""
    from .experiments import refuse_deleting_groups_in_use

    return refuse_deleting_groups_in_use(request, instances)
