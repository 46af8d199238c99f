"""Admin for clustering (a leaf: nothing on the request path imports it).

"Clusters" in the admin menu: the clusters (editors rename them and describe them; the rest is
the runs' to set) and the runs (listed with their figures; a run's page shows its clusters, their
strongest features and the centroid table). Neither is added or deleted by hand.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.ui.tables import BooleanColumn, Column
from wagtail.admin.views.generic import InspectView
from wagtail.admin.viewsets.model import ModelViewSet

from ..learning.cluster_runs import run_features
from ..learning.models import Cluster, ClusterRun
from .menu import MENU_HOOK
from .permissions import VIEWSETS_NEED_POLICY, limited_policy

# Runs create (and retire) clusters and runs; editors may only look, or edit a cluster's name.
CLUSTER_POLICY = limited_policy(Cluster, ("change", "view"))
RUN_POLICY = limited_policy(ClusterRun, ("view",))


class ClusterForm(WagtailAdminModelForm):
    """Name and description; a changed name is the editor's (later runs keep it)."""

    class Meta:
        model = Cluster
        fields = ["name", "description"]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("Give the cluster a name."))
        return name

    def save(self, commit: bool = True) -> Cluster:
        if "name" in self.changed_data:
            self.instance.name_is_custom = True
        return super().save(commit=commit)


def _run_label(cluster: Cluster) -> str:
    """"Run 4, 27 Nov 02:30" rather than the run's whole summary."""
    run = cluster.last_run
    if run is None:
        return ""
    return f"Run {run.pk}, {localtime(run.started_at):%d %b %H:%M}"


class ClusterViewSet(ModelViewSet):
    model = Cluster
    form_class = ClusterForm
    icon = "group"
    menu_label = _("Clusters")
    menu_order = 200
    menu_hook = MENU_HOOK
    list_display = [
        "name", "slug", Column("size", label=_("Visitors"), sort_key="size"),
        BooleanColumn("active", label=_("Active")),
        Column("last_run", label=_("Last run"), accessor=_run_label, sort_key="last_run"),
    ]
    list_filter = ["active"]
    search_fields = ["name", "slug", "description"]
    copy_view_enabled = False
    if VIEWSETS_NEED_POLICY:
        permission_policy = CLUSTER_POLICY

    def get_form_class(self, for_update: bool = False) -> type[forms.ModelForm]:
        return ClusterForm


class ClusterRunInspectView(InspectView):
    """A run's figures and its clusters: name, size, strongest features, centroids."""

    template_name = "microadjust_cms/admin/cluster_run_inspect.html"
    fields = ["started_at", "finished_at", "duration_seconds", "status", "error", "visitors", "method", "k",
              "silhouette"]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        run = self.object
        names = dict(Cluster.objects.filter(slug__in=run.slugs).values_list("slug", "name"))
        strongest = run_features(run) if run.centroids_standardized else []
        context["clusters"] = [
            {"slug": slug, "name": names.get(slug, slug), "size": size,
             "features": ", ".join(f"{name} {z:+.1f}σ" for name, z in strongest[i])}
            for i, (slug, size) in enumerate(zip(run.slugs, run.sizes, strict=False))]
        context["centroid_rows"] = [
            (name, [run.centroids[c][j] for c in range(len(run.slugs))]) for j, name in enumerate(run.feature_names)]
        context["silhouettes"] = sorted((int(k), v) for k, v in (run.silhouette_by_k or {}).items())
        return context


class ClusterRunViewSet(ModelViewSet):
    model = ClusterRun
    icon = "history"
    menu_label = _("Cluster runs")
    menu_order = 300
    menu_hook = MENU_HOOK
    list_display = [
        "started_at", "visitors", "k",
        Column("silhouette", label=_("Silhouette"), sort_key="silhouette",
               accessor=lambda run: "" if run.silhouette is None else f"{run.silhouette:.3f}"),
        Column("duration_seconds", label=_("Duration"), sort_key="duration_seconds",
               accessor=lambda run: "" if run.duration_seconds is None else f"{run.duration_seconds:.1f} s"),
        "status",
    ]
    list_filter = ["status"]
    inspect_view_enabled = True
    inspect_view_class = ClusterRunInspectView
    copy_view_enabled = False
    form_fields: list[str] = []
    if VIEWSETS_NEED_POLICY:
        permission_policy = RUN_POLICY


cluster_viewset = ClusterViewSet("microadjust_clusters")
cluster_run_viewset = ClusterRunViewSet("microadjust_cluster_runs")
