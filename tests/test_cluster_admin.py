"""The "Clusters" admin: runs listed, a run's clusters shown, clusters renamed (and kept)."""

import pytest
from django.urls import reverse

from microadjust_cms.learning.cluster_runs import recluster
from microadjust_cms.learning.models import Cluster, ClusterRun

from .test_recluster import planted_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    planted_events()
    return recluster()


def test_runs_are_listed_and_a_run_shows_its_clusters(admin_client, run):
    listing = admin_client.get(reverse("microadjust_cluster_runs:index"))
    assert listing.status_code == 200
    assert reverse("microadjust_cluster_runs:inspect", args=[run.pk]) in listing.content.decode()
    page = admin_client.get(reverse("microadjust_cluster_runs:inspect", args=[run.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    for cluster in Cluster.objects.all():
        assert cluster.slug in html and cluster.name in html
    assert "video fans, mobile" in html and "affinity:video" in html and "σ" in html
    assert "Centroids (original units)" in html
    assert admin_client.get(reverse("microadjust_cluster_runs:inspect", args=[9999])).status_code == 404


def test_a_too_few_run_page_renders(admin_client, settings):
    settings.MICROADJUST_CLUSTER_MIN_VISITORS = 10**6
    empty = recluster()
    page = admin_client.get(reverse("microadjust_cluster_runs:inspect", args=[empty.pk]))
    assert page.status_code == 200 and "too few visitors" in page.content.decode()


def test_clusters_are_listed_and_renamed_and_the_name_survives_a_run(admin_client, run):
    listing = admin_client.get(reverse("microadjust_clusters:index"))
    assert listing.status_code == 200 and "video fans, mobile" in listing.content.decode()
    cluster = Cluster.objects.get(name="video fans, mobile")
    url = reverse("microadjust_clusters:edit", args=[cluster.pk])
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"name": "Phone video fans", "description": "Watch on the bus"})
    assert response.status_code == 302
    cluster.refresh_from_db()
    assert (cluster.name, cluster.name_is_custom, cluster.description) == ("Phone video fans", True, "Watch on the bus")
    # a description-only edit does not mark another cluster's generated name as custom
    other = Cluster.objects.exclude(pk=cluster.pk).first()
    admin_client.post(reverse("microadjust_clusters:edit", args=[other.pk]), {"name": other.name, "description": "x"})
    other.refresh_from_db()
    assert not other.name_is_custom
    recluster()
    assert Cluster.objects.get(pk=cluster.pk).name == "Phone video fans"
    assert ClusterRun.objects.filter(status="done").count() == 2


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_bad_name_is_a_form_error(admin_client, run, name):
    cluster = Cluster.objects.first()
    response = admin_client.post(reverse("microadjust_clusters:edit", args=[cluster.pk]), {"name": name})
    assert response.status_code == 200
    assert response.context["form"].errors["name"]
    cluster.refresh_from_db()
    assert not cluster.name_is_custom


def test_clusters_and_runs_are_not_added_or_deleted_by_hand(admin_client, run):
    cluster = Cluster.objects.first()
    for url in (reverse("microadjust_clusters:add"), reverse("microadjust_clusters:delete", args=[cluster.pk]),
                reverse("microadjust_cluster_runs:add")):
        response = admin_client.get(url)
        assert response.status_code in (302, 403), url
    assert admin_client.post(reverse("microadjust_clusters:delete", args=[cluster.pk])).status_code in (302, 403)
    assert Cluster.objects.filter(pk=cluster.pk).exists()
    assert "microadjust_clusters:add" not in admin_client.get(reverse("microadjust_clusters:index")).content.decode()
