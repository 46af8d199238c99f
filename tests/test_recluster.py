"""``recluster`` end to end: planted visitor types as Event rows → clusters, profiles, conditions."""

import random
import time
from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.utils import timezone

from microadjust_cms.learning.cluster_runs import recluster
from microadjust_cms.learning.clustering import ClusteringError
from microadjust_cms.learning.models import Cluster, ClusterRun
from microadjust_cms.segments.clusters import cluster_cache
from microadjust_cms.segments.membership import membership
from microadjust_cms.tracking.models import Event
from microadjust_cms.visitor.context import VisitorContext
from microadjust_cms.visitor.stores import Profile, get_profile_store

from .conftest import DESKTOP_UA, MOBILE_UA

pytestmark = pytest.mark.django_db
NOW = timezone.now()
TYPES = ("reader", "video", "skimmer")


def planted_events(per_type=25, seed=0, prefix=""):
    """Desktop deep readers of articles (several visits, long dwell, clicks), mobile video fans
    (one visit, video clicks), and skimmers (shallow scroll, abandons, no clicks)."""
    rng = random.Random(seed)
    rows = []

    def add(visitor, kind, minutes_ago, **fields):
        rows.append(Event(visitor_id=visitor, type=kind,
                          occurred_at=NOW - timedelta(minutes=minutes_ago), **fields))

    for kind in TYPES:
        for n in range(per_type):
            vid = f"{prefix}{kind}-{n:03d}"
            if kind == "reader":
                for visit in range(rng.randint(3, 5)):
                    at = 1440 * (visit + 1) + rng.randint(0, 60)
                    add(vid, "pageview", at, page_id=visit + 1, device="desktop")
                    add(vid, "impression", at - 1, page_id=visit + 1, block_id="a", content_type="article")
                    add(vid, "dwell", at - 2, block_id="a", content_type="article", value=rng.randint(40, 90) * 1000)
                    add(vid, "scroll", at - 3, page_id=visit + 1, value=rng.choice((90, 100)))
                    add(vid, "click", at - 3, block_id="a", content_type="article")
            elif kind == "video":
                at = rng.randint(60, 600)
                add(vid, "pageview", at, page_id=1, device="mobile")
                for i in range(rng.randint(2, 4)):
                    add(vid, "impression", at - 1, page_id=1, block_id=f"v{i}", content_type="video")
                    add(vid, "dwell", at - 1, block_id=f"v{i}", content_type="video", value=rng.randint(5, 15) * 1000)
                    add(vid, "click", at - 1, block_id=f"v{i}", content_type="video")
                add(vid, "scroll", at - 1, page_id=1, value=50)
            else:
                at = rng.randint(60, 2000)
                add(vid, "pageview", at, page_id=2, device=rng.choice(("desktop", "mobile")))
                for i in range(rng.randint(3, 5)):
                    add(vid, "impression", at - 1, page_id=2, block_id=f"s{i}", content_type="article")
                    add(vid, "abandon", at - 1, block_id=f"s{i}", content_type="article")
                add(vid, "scroll", at - 1, page_id=2, value=25)
    Event.objects.bulk_create(rows)


@pytest.fixture(params=["cache", "redis"])
def store(request, settings):
    if request.param == "redis":
        return request.getfixturevalue("redis_store")
    return get_profile_store()


def cluster_of(store, visitor_id):
    return store.load(visitor_id, None, record_view=False, now=time.time()).cluster


def slugs_by_type(store, per_type=25, prefix=""):
    found = {}
    for kind in TYPES:
        slugs = {cluster_of(store, f"{prefix}{kind}-{n:03d}") for n in range(per_type)}
        assert len(slugs) == 1, (kind, slugs)  # every visitor of a type in one cluster
        found[kind] = slugs.pop()
    assert len(set(found.values())) == 3  # and the types in different ones
    return found


def test_recluster_finds_the_planted_types_and_keeps_them_across_runs(store):
    planted_events()
    progress = []
    run = recluster(progress=lambda done, total: progress.append((done, total)))
    assert run.status == ClusterRun.Status.DONE, run.error
    assert (run.visitors, run.k, run.method) == (75, 3, "kmeans")
    assert sorted(run.sizes) == [25, 25, 25] and run.silhouette > 0.5
    assert progress[-1][0] == progress[-1][1] and [d for d, _t in progress] == sorted(d for d, _t in progress)
    assert str(run).startswith(f"Cluster run {run.pk} at ") and "k=3" in str(run)
    first = slugs_by_type(store)
    clusters = {c.slug: c for c in Cluster.objects.filter(active=True)}
    assert set(clusters) == set(first.values()) and {c.size for c in clusters.values()} == {25}
    assert clusters[first["video"]].name == "video fans, mobile"
    reader_name = clusters[first["reader"]].name
    assert reader_name.split(", ")[0] in ("lingerers", "deep readers", "frequent visitors", "clickers"), reader_name
    assert reader_name.endswith(", desktop")
    assert run.feature_names[-2:] == ["affinity:article", "affinity:video"]
    assert len(run.centroids) == len(run.centroids_standardized) == 3

    # An editor renames one; a day later, more visitors of the same types: same ids, custom name kept.
    renamed = clusters[first["reader"]]
    renamed.name, renamed.name_is_custom = "Our loyal readers", True
    renamed.save()
    planted_events(seed=1, prefix="n")
    second = recluster()
    assert second.status == ClusterRun.Status.DONE and second.k == 3 and second.visitors == 150
    assert slugs_by_type(store) == first == slugs_by_type(store, prefix="n")
    assert Cluster.objects.get(slug=first["reader"]).name == "Our loyal readers"
    assert Cluster.objects.count() == 3 and set(second.slugs) == set(first.values())
    assert cluster_of(store, "reader-000") == first["reader"]
    assert store.load("reader-000", None, record_view=False, now=time.time()).cluster_run == second.pk


def test_a_far_away_type_is_a_new_cluster_and_a_vanished_one_is_retired(settings):
    planted_events()
    first = recluster(k=3)
    Event.objects.filter(visitor_id__startswith="skimmer").delete()
    # converters: a type the first run never saw
    Event.objects.bulk_create([Event(visitor_id=f"buyer-{n}", type=kind, occurred_at=NOW - timedelta(minutes=5),
                                     device="desktop", page_id=9, name="sale" if kind == "conversion" else "")
                               for n in range(25) for kind in ("pageview", "conversion", "conversion")])
    second = recluster(k=3)
    kept = set(first.slugs) & set(second.slugs)
    assert len(kept) == 2  # readers and video fans
    new = set(second.slugs) - set(first.slugs)
    assert new == {"cluster-4"}
    retired = Cluster.objects.get(slug=(set(first.slugs) - kept).pop())
    assert not retired.active and retired.size == 0
    buyers = Cluster.objects.get(slug="cluster-4")
    assert buyers.active and buyers.size == 25 and buyers.centroid_standardized["conversion_rate"] > 1
    # Conditions naming the retired cluster still validate (editors can save their pages); at
    # render the rule is false, as the cluster is no longer anyone's.
    from microadjust_cms.conditions import validate_condition
    from microadjust_cms.segments.membership import segment_choices

    validate_condition({"signal": "cluster", "op": "eq", "value": retired.slug})
    validate_condition({"signal": "segment", "op": "contains", "value": retired.slug})
    assert dict(segment_choices())[retired.slug].endswith("(retired)")


def test_too_few_visitors_changes_nothing(settings):
    settings.MICROADJUST_CLUSTER_MIN_VISITORS = 100
    planted_events()
    run = recluster()
    assert run.status == ClusterRun.Status.TOO_FEW and "too few visitors: 75" in run.error
    assert not Cluster.objects.exists() and "too few visitors" in str(run)


def test_a_failed_run_is_recorded_and_raised(settings):
    settings.MICROADJUST_CLUSTER_HIERARCHICAL_MAX_VISITORS = 10
    planted_events()
    with pytest.raises(ClusteringError):
        recluster(method="hierarchical")
    run = ClusterRun.objects.get()
    assert run.status == ClusterRun.Status.FAILED and "CLUSTER_HIERARCHICAL_MAX_VISITORS" in run.error
    assert run.finished_at is not None and not Cluster.objects.exists()


def test_a_run_failing_while_assigning_still_places_new_visitors_on_its_clusters(monkeypatch):
    """The run saved its clusters (committed) before the profile store failed: new visitors are
    placed on those clusters, never on a retired one from the run before."""
    from microadjust_cms.segments.clusters import visitor_cluster
    from microadjust_cms.visitor.stores import StoreUnavailable

    planted_events()
    recluster(k=3)
    store = get_profile_store()

    def unavailable(*args, **kwargs):
        raise StoreUnavailable("Redis went away")

    monkeypatch.setattr(type(store), "set_clusters", unavailable)
    with pytest.raises(StoreUnavailable):
        recluster(k=2)
    failed = ClusterRun.objects.order_by("-pk").first()
    assert failed.status == ClusterRun.Status.FAILED and len(failed.slugs) == 2
    active = set(Cluster.objects.filter(active=True).values_list("slug", flat=True))
    assert active == set(failed.slugs)
    fan = visitor(MOBILE_UA, visits=1, total_pageviews=1, affinity={"video": 6.0}, last_seen=time.time() - 60)
    assert visitor_cluster(fan) in active


def test_hierarchical_runs_end_to_end():
    planted_events()
    run = recluster(method="hierarchical")
    assert run.status == ClusterRun.Status.DONE and run.method == "hierarchical" and run.k == 3


# -- at request time ------------------------------------------------------------------------

def visitor(ua=DESKTOP_UA, **profile):
    request = RequestFactory().get("/", HTTP_USER_AGENT=ua)
    return VisitorContext(request, overrides={"profile": Profile(**profile)})


@pytest.fixture
def clustered():
    planted_events()
    recluster()
    first = slugs_by_type(get_profile_store())
    return first


def test_a_visitor_without_assignment_gets_the_nearest_centroid(clustered, django_assert_num_queries):
    fan = visitor(MOBILE_UA, visits=1, total_pageviews=1, affinity={"video": 6.0}, last_seen=time.time() - 60)
    reader = visitor(visits=4, total_pageviews=4, page_scroll=100, affinity={"article": 12.0},
                     last_seen=time.time() - 86400)
    cluster_cache.get()  # warm: later look-ups are free
    with django_assert_num_queries(0):
        assert fan.signal("cluster") == clustered["video"]
        assert reader.signal("cluster") == clustered["reader"]
    assigned = visitor(cluster=clustered["skimmer"], cluster_run=1)  # an assignment wins
    assert assigned.signal("cluster") == clustered["skimmer"]


def test_without_a_run_the_cluster_signal_is_empty():
    assert visitor(visits=3).signal("cluster") is None
    assert "cluster-1" not in membership(visitor(visits=3))


def test_cluster_segments_and_the_cluster_signal_decide_a_personalized_block(clustered):
    from microadjust_cms.conditions import validate_condition
    from microadjust_cms.segments.membership import segment_choices
    from microadjust_cms.signals.registry import registry
    from project.demo.models import HomePage

    choices = dict(segment_choices())
    assert set(clustered.values()) <= set(choices) and choices[clustered["video"]].startswith("Cluster: ")
    assert {slug for slug, _n in registry.get("cluster").get_choices()} == set(clustered.values())
    condition = {"signal": "segment", "op": "contains", "value": clustered["reader"]}
    validate_condition(condition)  # cluster segments are valid segment values for the editor
    block = HomePage.body.field.stream_block.child_blocks["personalized_card"]
    value = block.to_python({"block_id": "c1", "default": {"title": "Everyone"}, "variants": [
        {"name": "readers", "condition": condition, "content": {"title": "Long reads"}},
        {"name": "fans", "segment": clustered["video"], "content": {"title": "Videos"}},
        {"name": "skim", "condition": {"signal": "cluster", "op": "eq", "value": clustered["skimmer"]},
         "content": {"title": "Short"}},
    ]})
    store = get_profile_store()
    for kind, expected in (("reader", "readers"), ("video", "fans"), ("skimmer", "skim")):
        profile = store.load(f"{kind}-001", None, record_view=False, now=time.time())
        assert value.decide(visitor(**{f: getattr(profile, f) for f in ("cluster", "cluster_run")})).variant == expected
    assert value.decide(visitor(cluster="cluster-99")).variant in ("readers", "fans", "skim")  # nearest
    assert set(membership(visitor(cluster=clustered["video"]))) == {clustered["video"]}


def test_cluster_segments_are_false_when_the_store_is_down(clustered, unreachable_redis_store):
    context = VisitorContext(RequestFactory().get("/", HTTP_USER_AGENT=DESKTOP_UA))
    context.__dict__["visitor_id"] = "f" * 32
    assert clustered["reader"] not in membership(context)


def test_preview_as_a_cluster(clustered):
    from microadjust_cms.rendering.simulation import preview_modes_for, visitor_for_mode

    modes = dict(preview_modes_for([("", "Default")]))
    assert modes[f"cluster:{clustered['video']}"] == "As cluster: video fans, mobile"
    simulated = visitor_for_mode(RequestFactory().get("/"), f"cluster:{clustered['video']}")
    assert simulated.signal("cluster") == clustered["video"] and clustered["video"] in membership(simulated)


SETTINGS_URL = "/admin/settings/microadjust_cms/clusteringsettings/"


def test_an_editor_fixes_k_and_the_method_in_settings(admin_client):
    """Settings → Clustering: a fixed k and method apply to every run without options (nightly,
    the button); bad values are form errors; options given to a run still win."""
    from microadjust_cms.learning.cluster_runs import recluster
    from microadjust_cms.learning.models import ClusteringSettings

    response = admin_client.get(SETTINGS_URL, follow=True)  # to the one settings object
    assert response.status_code == 200 and "Number of clusters" in response.content.decode()
    url = response.redirect_chain[-1][0]
    response = admin_client.post(url, {"fixed_k": "1", "method": "kmeans"})
    assert response.status_code == 200 and "greater than or equal to 2" in response.content.decode()
    assert ClusteringSettings.load().fixed_k is None  # nothing saved
    response = admin_client.post(url, {"fixed_k": "2", "method": "hierarchical"})
    assert response.status_code == 302
    assert (ClusteringSettings.load().fixed_k, ClusteringSettings.load().method) == (2, "hierarchical")

    planted_events()  # three planted types
    run = recluster()
    assert (run.k, run.method, run.status) == (2, "hierarchical", "done")
    run = recluster(k=3, method="kmeans")
    assert (run.k, run.method) == (3, "kmeans")
