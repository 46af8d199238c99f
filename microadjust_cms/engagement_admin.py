"""Admin: the list of trained engagement model versions (a leaf: nothing on the request path
imports this). Read-only: models are made by training (command, task or button), not by hand."""

from __future__ import annotations

from django.urls import path
from django.utils.translation import gettext_lazy as _
from wagtail.admin.ui.tables import BooleanColumn, Column
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.permission_policies import ModelPermissionPolicy

from .admin_menu import MENU_HOOK
from .models import EngagementModel

try:
    from wagtail.permissions import register_permission_policy
except ImportError:  # pragma: no cover - Wagtail 7
    register_permission_policy = None


class ViewOnlyPermissionPolicy(ModelPermissionPolicy):
    """Who may view engagement models may only view them."""

    def user_has_permission(self, user, action):
        return action in ("view", "inspect") and super().user_has_permission(user, "view")

    def user_has_any_permission(self, user, actions):
        return any(self.user_has_permission(user, action) for action in actions)


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

    if register_permission_policy is None:  # Wagtail before the policy registry
        @property
        def permission_policy(self):
            return ViewOnlyPermissionPolicy(self.model)

    def get_urlpatterns(self):
        return [
            path("", self.index_view, name="index"),
            path("results/", self.index_results_view, name="index_results"),
            path("inspect/<str:pk>/", self.inspect_view, name="inspect"),
        ]


if register_permission_policy is not None:
    register_permission_policy(EngagementModel, ViewOnlyPermissionPolicy(EngagementModel), exact_class=True)
engagement_model_viewset = EngagementModelViewSet("microadjust_engagement_models")
