"""Models that jobs make (cluster runs, clusters, engagement models): editors with the view
permission may look, a cluster's name may be changed, and nobody adds or deletes them by hand."""

import pytest
from django.contrib.auth.models import Permission

from microadjust_cms.admin.clusters import CLUSTER_POLICY, RUN_POLICY
from microadjust_cms.admin.engagement import POLICY as ENGAGEMENT_POLICY

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw")
    user.user_permissions.add(*Permission.objects.filter(codename__in=[
        "access_admin", "view_engagementmodel", "view_clusterrun", "view_cluster", "change_cluster",
        "add_engagementmodel", "delete_clusterrun"]))
    return django_user_model.objects.get(pk=user.pk)  # fresh permission cache


def test_editors_may_view_and_rename_but_never_add_or_delete(viewer, django_user_model):
    superuser = django_user_model.objects.create_superuser("root", password="pw")
    for user in (viewer, superuser):
        assert ENGAGEMENT_POLICY.user_has_permission(user, "view")
        assert ENGAGEMENT_POLICY.user_has_permission(user, "inspect")
        assert not ENGAGEMENT_POLICY.user_has_permission(user, "add")
        assert RUN_POLICY.user_has_permission(user, "view")
        assert not RUN_POLICY.user_has_any_permission(user, ["add", "change", "delete"])
        assert CLUSTER_POLICY.user_has_permission(user, "change")
        assert not CLUSTER_POLICY.user_has_permission(user, "delete")


def test_without_the_view_permission_nothing_is_allowed(django_user_model):
    user = django_user_model.objects.create_user("nobody", password="pw")
    assert not ENGAGEMENT_POLICY.user_has_any_permission(user, ["view", "inspect"])
    assert not RUN_POLICY.user_has_permission(user, "view")


def test_a_viewer_sees_the_listings(client, viewer):
    client.force_login(viewer)
    for url in ("/admin/microadjust_engagement_models/", "/admin/microadjust_cluster_runs/",
                "/admin/microadjust_clusters/"):
        assert client.get(url).status_code == 200, url
