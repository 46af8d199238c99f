"""Admin: the list of trained engagement model versions (a leaf: nothing on the request path
imports this). Read-only: models are made by training (command, task or button), not by hand."""

from __future__ import annotations

from django.urls import path
from django.utils.translation import gettext_lazy as _
from wagtail.admin.ui.tables import BooleanColumn, Column
from wagtail.admin.viewsets.model import ModelViewSet

from ..learning.models import EngagementModel
from .menu import MENU_HOOK
from .permissions import VIEWSETS_NEED_POLICY, limited_policy

#: Who may view engagement models may only view them.
POLICY = limited_policy(EngagementModel, ("view", "inspect"))


class FigureColumn(Column):
    """A float shown with three decimals, "–" when unknown (AUC undefined)."""

    def get_value(self, instance):
        value = super().get_value(instance)
        return "–" if value is None else f"{value:.3f}"


class EngagementModelViewSet(ModelViewSet):
    model = EngagementModel
    icon = "table"
    menu_label = _("Engagement models")
    menu_order = 400
    menu_hook = MENU_HOOK
    inspect_view_enabled = True
    inspect_view_fields = ["version", "trained_at", "window_days", "training_rows", "positives",
                           "held_out_rows", "auc", "log_loss", "duration_seconds", "active",
                           "inactive_reason", "feature_names", "layout"]
    list_display = [
        Column("version", label=_("Version"), sort_key="version"),
        Column("trained_at", label=_("Trained at"), sort_key="trained_at"),
        Column("training_rows", label=_("Rows")),
        Column("positives", label=_("Positives")),
        FigureColumn("auc", label=_("AUC")),
        FigureColumn("log_loss", label=_("Log loss")),
        FigureColumn("duration_seconds", label=_("Duration (s)")),
        BooleanColumn("active", label=_("Active")),
        Column("inactive_reason", label=_("Why not active")),
    ]
    list_filter = ["active"]

    if VIEWSETS_NEED_POLICY:
        permission_policy = POLICY

    def get_urlpatterns(self):
        return [
            path("", self.index_view, name="index"),
            path("results/", self.index_results_view, name="index_results"),
            path("inspect/<str:pk>/", self.inspect_view, name="inspect"),
        ]


engagement_model_viewset = EngagementModelViewSet("microadjust_engagement_models")
