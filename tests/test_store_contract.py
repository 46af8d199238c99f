"""One contract, every profile store: the cache store and the Redis store on real Redis."""

import pytest

from microadjust_cms.visitor.stores import get_profile_store
from microadjust_cms.visitor.stores.base import ProfileStore

from .helpers import redis_commands_sent

IDLE = 30 * 60
T0 = 1_800_000_000.0


@pytest.fixture(params=["cache", "redis"])
def store(request, settings) -> ProfileStore:
    if request.param == "redis":
        return request.getfixturevalue("redis_store")
    settings.MICROADJUST_PROFILE_STORE = "microadjust_cms.visitor.stores.cache.CacheProfileStore"
    get_profile_store.cache_clear()
    return get_profile_store()


def test_new_visitor_is_empty_without_recording(store):
    profile = store.load("a" * 32, "7", record_view=False, now=T0)
    assert (profile.visits, profile.page_views, profile.visit_pageviews) == (0, 0, 0)
    assert store.load("a" * 32, "7", record_view=False, now=T0).visits == 0


def test_first_view_starts_first_visit(store):
    profile = store.load("b" * 32, "7", record_view=True, now=T0)
    assert profile.visits == 1
    assert profile.visit_pageviews == 1
    assert profile.page_views == 1
    assert profile.first_seen == T0
    assert profile.last_seen == 0.0  # never seen before this request


def test_views_within_idle_gap_stay_in_one_visit(store):
    vid = "c" * 32
    store.load(vid, "home", record_view=True, now=T0)
    store.load(vid, "article", record_view=True, now=T0 + 60)
    profile = store.load(vid, "home", record_view=True, now=T0 + IDLE)
    assert profile.visits == 1
    assert profile.visit_pageviews == 3
    assert profile.total_pageviews == 3
    assert profile.page_views == 2  # the repeat view of "home"
    assert profile.last_seen == T0 + 60


def test_idle_gap_starts_new_visit(store):
    vid = "d" * 32
    store.load(vid, "home", record_view=True, now=T0)
    store.load(vid, "home", record_view=True, now=T0 + 10)
    profile = store.load(vid, "home", record_view=True, now=T0 + 10 + IDLE + 1)
    assert profile.visits == 2
    assert profile.visit_pageviews == 1
    assert profile.page_views == 3
    assert profile.first_seen == T0


def test_read_without_recording_changes_nothing(store):
    vid = "e" * 32
    store.load(vid, "home", record_view=True, now=T0)
    peek = store.load(vid, "home", record_view=False, now=T0 + 5)
    assert (peek.visits, peek.page_views, peek.total_pageviews) == (1, 1, 1)
    again = store.load(vid, "home", record_view=True, now=T0 + 6)
    assert again.page_views == 2


def test_visitors_and_pages_are_separate(store):
    store.load("f" * 32, "home", record_view=True, now=T0)
    other = store.load("0" * 32, "home", record_view=True, now=T0)
    assert other.page_views == 1
    assert store.load("f" * 32, "other", record_view=True, now=T0 + 1).page_views == 1


def test_clear_forgets_the_visitor(store):
    vid = "1" * 32
    store.load(vid, "home", record_view=True, now=T0)
    store.clear(vid)
    assert store.load(vid, "home", record_view=False, now=T0).visits == 0


def test_keys_are_hash_tagged_by_visitor(store):
    assert store.key("abc", "p") == "ma:{abc}:p"
    assert store.key("abc", "pages") == "ma:{abc}:pages"


def test_redis_keys_expire_and_share_a_slot(redis_store, settings):
    from django_redis import get_redis_connection

    settings.MICROADJUST_PROFILE_TTL = 1000
    redis_store.load("2" * 32, "home", record_view=True, now=T0)
    connection = get_redis_connection("redis")
    keys = sorted(k.decode() for k in connection.keys("ma:*"))
    assert keys == ["ma:{" + "2" * 32 + "}:p", "ma:{" + "2" * 32 + "}:pages"]
    assert all(0 < connection.ttl(k) <= 1000 for k in keys)
    assert len({k[k.index("{"):k.index("}") + 1] for k in keys}) == 1


def test_redis_one_round_trip_per_load(redis_store):
    """The whole load (count the view, read the profile) is one command sent to Redis."""
    redis_store.load("3" * 32, "home", record_view=True, now=T0)  # script now cached server-side
    with redis_commands_sent() as sent:
        profile = redis_store.load("3" * 32, "home", record_view=True, now=T0 + 1)
    assert profile.page_views == 2
    assert len(sent) == 1
    assert b"EVALSHA" in b"".join(sent[0] if isinstance(sent[0], list) else [sent[0]])


# -- behaviour (record_events) ------------------------------------------------------------------

DAY = 86400.0


def update(**kwargs):
    from microadjust_cms.behaviour import BehaviourUpdate

    return BehaviourUpdate(**kwargs)


def test_engagement_adds_up_and_halves_every_half_life(store, settings):
    settings.MICROADJUST_ENGAGEMENT_HALF_LIFE_DAYS = 14
    vid = "2" * 32
    store.record_events(vid, update(engagement=8.0), now=T0)
    store.record_events(vid, update(engagement=2.0), now=T0 + 60)
    profile = store.load(vid, "home", record_view=False, now=T0 + 60)
    assert profile.engagement == pytest.approx(10.0, rel=1e-4)
    later = store.load(vid, "home", record_view=False, now=T0 + 60 + 14 * DAY)
    assert later.engagement == pytest.approx(5.0, rel=1e-4)
    # New points join what is left after decay.
    store.record_events(vid, update(engagement=1.0), now=T0 + 60 + 28 * DAY)
    assert store.load(vid, "home", record_view=False, now=T0 + 60 + 28 * DAY).engagement \
        == pytest.approx(3.5, rel=1e-4)


def test_affinity_decays_and_accumulates_per_content_key(store):
    vid = "3" * 32
    store.record_events(vid, update(affinity={"video": 6.0, "howto": 2.0}), now=T0)
    store.record_events(vid, update(affinity={"article": 4.0}), now=T0 + 14 * DAY)
    profile = store.load(vid, None, record_view=False, now=T0 + 14 * DAY)
    assert profile.affinity["video"] == pytest.approx(3.0, rel=1e-4)
    assert profile.affinity["howto"] == pytest.approx(1.0, rel=1e-4)
    assert profile.affinity["article"] == pytest.approx(4.0, rel=1e-4)


def test_page_scroll_is_a_maximum_and_dwell_a_sum_per_page(store):
    vid = "4" * 32
    store.record_events(vid, update(page_scroll={"7": 75}, page_dwell={"7": 12.5}), now=T0)
    store.record_events(vid, update(page_scroll={"7": 50, "8": 25}, page_dwell={"7": 2.5}),
                        now=T0 + 1)
    seven = store.load(vid, "7", record_view=True, now=T0 + 2)
    assert (seven.page_scroll, seven.page_dwell) == (75, pytest.approx(15.0))
    eight = store.load(vid, "8", record_view=False, now=T0 + 2)
    assert (eight.page_scroll, eight.page_dwell) == (25, 0.0)
    assert seven.page_views == 1  # behaviour does not count views


def test_block_abandons_clicks_and_conversions(store):
    vid = "5" * 32
    store.record_events(vid, update(block_abandons={"hero": 1}, block_clicks={"offer": 2},
                                    conversions=1), now=T0)
    store.record_events(vid, update(conversions=2), now=T0 + 1)
    profile = store.load(vid, None, record_view=False, now=T0 + 2)
    assert profile.abandoned == {"hero"}
    assert profile.clicked == {"offer"}
    assert profile.conversions == 3


def test_last_visit_end_is_where_the_previous_visit_stopped(store):
    vid = "6" * 32
    store.load(vid, "home", record_view=True, now=T0)
    store.load(vid, "home", record_view=True, now=T0 + 100)
    assert store.load(vid, "home", record_view=False, now=T0 + 200).last_visit_end == 0.0
    profile = store.load(vid, "home", record_view=True, now=T0 + 3 * DAY)
    assert profile.visits == 2
    assert profile.last_visit_end == T0 + 100


def test_clear_forgets_behaviour_too(store):
    vid = "7" * 32
    store.record_events(vid, update(engagement=5.0, block_abandons={"hero": 1},
                                    page_scroll={"home": 50}), now=T0)
    store.clear(vid)
    profile = store.load(vid, "home", record_view=False, now=T0)
    assert (profile.engagement, profile.abandoned, profile.page_scroll) == (0.0, frozenset(), 0)


# -- cluster assignments (clustering runs write them in bulk) --------------------------------

def test_set_clusters_writes_assignments_in_bulk_and_keeps_the_profile(store, settings):
    settings.MICROADJUST_CLUSTER_ASSIGN_CHUNK = 3  # several chunks
    store.load("2" * 32, "home", record_view=True, now=T0)
    store.load("2" * 32, "home", record_view=True, now=T0 + 5)
    pairs = [("2" * 32, "cluster-1")] + [(f"{i:032x}", f"cluster-{i % 3 + 1}") for i in range(100, 107)]
    assert store.set_clusters(iter(pairs), run_id=7) == 8
    profile = store.load("2" * 32, "home", record_view=False, now=T0 + 6)
    assert (profile.cluster, profile.cluster_run) == ("cluster-1", 7)
    assert (profile.visits, profile.total_pageviews, profile.page_views) == (1, 2, 2)
    for visitor_id, slug in pairs[1:]:  # no profile before: one holding the assignment only
        fresh = store.load(visitor_id, "home", record_view=False, now=T0)
        assert (fresh.cluster, fresh.cluster_run, fresh.visits) == (slug, 7, 0)


def test_a_later_run_replaces_the_assignment_and_views_keep_it(store):
    vid = "3" * 32
    store.set_clusters([(vid, "cluster-2")], run_id=1)
    store.set_clusters([(vid, "cluster-5")], run_id=2)
    store.load(vid, "home", record_view=True, now=T0)
    profile = store.load(vid, "home", record_view=True, now=T0 + 1)
    assert (profile.cluster, profile.cluster_run, profile.visits) == ("cluster-5", 2, 1)
    assert store.set_clusters([], run_id=3) == 0


def test_new_profiles_from_assignments_expire(redis_store):
    from django_redis import get_redis_connection

    redis_store.load("4" * 32, "home", record_view=True, now=T0)
    connection = get_redis_connection("redis")
    connection.expire(redis_store.key("4" * 32, "p"), 1000)
    redis_store.set_clusters([("4" * 32, "cluster-1"), ("5" * 32, "cluster-2")], run_id=1)
    assert 0 < connection.ttl(redis_store.key("4" * 32, "p")) <= 1000  # its own TTL is kept
    assert connection.ttl(redis_store.key("5" * 32, "p")) > 1000  # PROFILE_TTL


def test_assignments_do_not_extend_a_cached_profile_past_its_ttl(settings):
    """The cache store (one value per visitor) writes an assignment back with the TTL the
    profile had left since its last activity, not a fresh ``PROFILE_TTL``: a nightly run must
    not keep an inactive visitor's profile alive (the Redis store keeps the TTL natively)."""
    import time

    from microadjust_cms.visitor.stores import get_profile_store

    settings.MICROADJUST_PROFILE_TTL = 3
    store = get_profile_store()
    vid, now = "6" * 32, time.time()
    store.load(vid, "home", record_view=True, now=now - 2.5)  # last active 2.5 s ago: 0.5 s left
    store.set_clusters([(vid, "cluster-1"), ("7" * 32, "cluster-2")], run_id=1)
    time.sleep(1.0)
    assert store.load(vid, "home", record_view=False, now=time.time()).cluster == ""  # expired
    assert store.load("7" * 32, "home", record_view=False, now=time.time()).cluster == "cluster-2"


# -- auto-optimize counters (rendering.optimizer) -----------------------------------------------

def test_counters_are_recorded_and_come_back_with_the_profile(store):
    vid = "7" * 32
    store.record_events(vid, update(counters={"mod-1": {"n|all|video": 3, "s|all|video": 1},
                                              "mod-2": {"n|cluster-1|default": 2}}), now=T0)
    store.record_events("8" * 32, update(counters={"mod-1": {"n|all|video": 1}}), now=T0)
    profile = store.load(vid, "course", record_view=True, now=T0 + 1, counters=("mod-1", "mod-3"))
    assert profile.counters == {"mod-1": {"n|all|video": 4, "s|all|video": 1}, "mod-3": {}}
    assert profile.page_views == 1  # the view is still counted in the same call
    assert store.load(vid, "course", record_view=False, now=T0 + 2).counters == {}
    assert store.load_counters(["mod-2", "mod-1"]) == {
        "mod-2": {"n|cluster-1|default": 2}, "mod-1": {"n|all|video": 4, "s|all|video": 1}}
    store.reset_counters("mod-1")
    assert store.load_counters(["mod-1"]) == {"mod-1": {}}


def test_a_block_takes_no_new_counter_past_the_limit(store, settings):
    settings.MICROADJUST_OPTIMIZE_MAX_COUNTERS = 3
    fields = {f"n|all|v{i}": 1 for i in range(5)}
    store.record_events("9" * 32, update(counters={"mod": dict(list(fields.items())[:3])}), now=T0)
    store.record_events("9" * 32, update(counters={"mod": fields}), now=T0 + 1)
    counters = store.load_counters(["mod"])["mod"]
    assert counters == {"n|all|v0": 2, "n|all|v1": 2, "n|all|v2": 2}  # known ones still count


def test_redis_load_with_counters_is_still_one_round_trip(redis_store):
    redis_store.record_events("4" * 32, update(counters={"mod": {"n|all|default": 1}}), now=T0)
    redis_store.load("4" * 32, "home", record_view=True, now=T0, counters=("mod",))
    with redis_commands_sent() as sent:
        profile = redis_store.load("4" * 32, "home", record_view=True, now=T0 + 1, counters=("mod",))
    assert profile.counters == {"mod": {"n|all|default": 1}}
    assert len(sent) == 1
