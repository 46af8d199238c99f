"""Permission policies for admin models that jobs make, not editors (cluster runs, clusters,
engagement models): editors may only take the actions a viewset allows (a leaf: admin only)."""

from __future__ import annotations

from typing import Any

from django.db.models import Model
from wagtail.permission_policies import ModelPermissionPolicy

try:
    from wagtail.permissions import register_permission_policy
except ImportError:  # Wagtail 7: a viewset's ``permission_policy`` attribute instead
    register_permission_policy = None

#: Wagtail 8 looks policies up in a registry; Wagtail 7 viewsets need ``permission_policy`` set.
VIEWSETS_NEED_POLICY = register_permission_policy is None


class LimitedPermissionPolicy(ModelPermissionPolicy):
    """Only the ``allowed`` actions, each with the user's own permission for it ("inspect"
    needs "view"): add and delete are nobody's, superusers included."""

    def __init__(self, model: type[Model], allowed: tuple[str, ...]) -> None:
        super().__init__(model)
        self.allowed = allowed

    def user_has_permission(self, user: Any, action: str) -> bool:
        return action in self.allowed and super().user_has_permission(
            user, "view" if action == "inspect" else action)

    def user_has_any_permission(self, user: Any, actions: Any) -> bool:
        return any(self.user_has_permission(user, action) for action in actions)

    def user_has_permission_for_instance(self, user: Any, action: str, instance: Any) -> bool:
        return self.user_has_permission(user, action)

    def user_has_any_permission_for_instance(self, user: Any, actions: Any, instance: Any) -> bool:
        return self.user_has_any_permission(user, actions)


def limited_policy(model: type[Model], allowed: tuple[str, ...]) -> LimitedPermissionPolicy:
    """The model's policy, registered with Wagtail where it has a registry."""
    policy = LimitedPermissionPolicy(model, allowed)
    if register_permission_policy is not None:
        register_permission_policy(model, policy, exact_class=True)
    return policy
