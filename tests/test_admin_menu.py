"""The admin's Personalization submenu collects every page the app adds."""

import pytest

pytestmark = pytest.mark.django_db


def sidebar(client):
    response = client.get("/admin/")
    assert response.status_code == 200
    return response.content.decode()


def test_personalization_submenu_lists_the_app_pages_for_a_superuser(admin_client):
    html = sidebar(admin_client)
    assert "Personalization" in html
    labels = ["Segments", "Clusters", "Cluster runs", "Engagement models", "Learning jobs"]
    positions = [html.index(f'"{label}"') for label in labels]  # sidebar props are JSON
    assert positions == sorted(positions)  # in the menu's order
    for url in ("/admin/snippets/microadjust_cms/segment/", "/admin/microadjust_clusters/",
                "/admin/microadjust_cluster_runs/", "/admin/microadjust_engagement_models/",
                "/admin/microadjust/jobs/"):
        assert url in html
        assert admin_client.get(url).status_code == 200


def test_an_editor_without_permissions_sees_no_personalization_pages(client, django_user_model):
    from django.contrib.auth.models import Permission

    editor = django_user_model.objects.create_user("editor", password="pw")
    editor.user_permissions.add(Permission.objects.get(codename="access_admin"))
    client.force_login(editor)
    html = sidebar(client)
    assert '"Learning jobs"' not in html and '"Cluster runs"' not in html
    assert '"Personalization"' not in html  # an empty submenu is hidden
