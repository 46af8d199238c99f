"""One contract, every event sink: the database sink and the Redis Streams sink (real Redis,
drained by the real loader into the suite's database: SQLite locally, PostgreSQL in CI)."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from microadjust_cms.behaviour import summarize
from microadjust_cms.tracking.models import Event
from microadjust_cms.tracking.schema import validate_batch
from microadjust_cms.tracking.sinks import Batch, SinkFull, SinkUnavailable, get_event_sink
from microadjust_cms.visitor.stores import get_profile_store

from .helpers import redis_commands_sent
from .sinks import drain

pytestmark = pytest.mark.django_db
T = int(datetime(2026, 12, 1, 12, tzinfo=UTC).timestamp() * 1000)
NOW = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)


@pytest.fixture(params=["database", "stream"])
def sink(request):
    return request.getfixturevalue("database_sink" if request.param == "database" else "stream_sink")


def rows(count=3, block="hero"):
    events = [{"type": "pageview", "t": T, "page": 3, "path": "/", "previous": "/a/"}]
    events += [{"type": "dwell", "t": T + i, "block": block, "variant": "v1", "value": 100 + i,
                "kind": "video", "tags": "a b", "pos": i} for i in range(count - 2)]
    events.append({"type": "click", "t": T + 99, "block": block, "variant": "v1", "name": "Go"})
    return validate_batch({"v": 1, "events": events}, now=NOW, max_events=100)


def stored():
    return list(Event.objects.order_by("occurred_at", "id").values(
        "visitor_id", "type", "occurred_at", "received_at", "page_id", "path", "previous_path",
        "block_id", "variant", "value", "name", "content_type", "tags", "device", "position"))


def test_a_batch_reaches_the_event_table_whole_with_every_column(sink):
    batch_rows = rows(5)
    sink.write(Batch("v" * 32, batch_rows, device="tablet", received_at=NOW))
    drain(sink)
    found = stored()
    assert len(found) == 5
    assert {row["visitor_id"] for row in found} == {"v" * 32}
    assert {row["device"] for row in found} == {"tablet"}
    assert {row["received_at"] for row in found} == {NOW}
    assert [row["type"] for row in found] == ["pageview", "dwell", "dwell", "dwell", "click"]
    assert found[0]["previous_path"] == "/a/" and found[0]["page_id"] == 3
    assert [row["value"] for row in found[1:4]] == [100, 101, 102]
    assert [row["position"] for row in found[1:4]] == [0, 1, 2]
    assert found[1]["content_type"] == "video" and found[1]["tags"] == "a b"
    assert found[4]["name"] == "Go"
    assert found[4]["occurred_at"] == datetime.fromtimestamp((T + 99) / 1000, tz=UTC)


def test_batches_of_several_visitors_keep_their_visitor(sink):
    for letter in "abc":
        sink.write(Batch(letter * 32, rows(3, block=f"b-{letter}"), received_at=NOW))
    drain(sink)
    pairs = set(Event.objects.values_list("visitor_id", "block_id"))
    assert {(letter * 32, f"b-{letter}") for letter in "abc"} <= pairs
    assert Event.objects.count() == 9


def test_an_empty_batch_keeps_nothing(sink):
    assert sink.write(Batch("v" * 32, [], received_at=NOW)) is False
    drain(sink)
    assert Event.objects.count() == 0


def test_the_backlog_report_names_the_sink(sink):
    info = sink.backlog()
    assert info["sink"] == sink.name and info["pending_batches"] == 0
    sink.write(Batch("v" * 32, rows(3), received_at=NOW))
    assert sink.backlog()["pending_batches"] == (1 if sink.name == "redis-stream" else 0)
    drain(sink)
    assert sink.backlog()["pending_batches"] == 0


def test_the_profile_update_is_applied_once_whoever_applies_it(sink, redis_store, client):
    """The stream sink applies it in its script (True); the database sink leaves it to the
    caller (False). Through the collect endpoint the profile ends up the same either way."""
    from microadjust_cms.conf import get_setting
    from microadjust_cms.visitor.context import visitor_cookie_signer

    from .helpers import visitor_client

    visitor = visitor_client()
    visitor_id = visitor_cookie_signer().unsign(visitor.cookies[get_setting("COOKIE_NAME")].value)
    t = int(timezone.now().timestamp() * 1000)
    events = [{"type": "click", "t": t, "block": "hero", "variant": "v1", "name": "Go"},
              {"type": "abandon", "t": t, "block": "offer", "variant": "default", "value": 300}]
    import json

    response = visitor.post("/microadjust/collect/", data=json.dumps({"v": 1, "events": events}),
                            content_type="application/json", HTTP_ORIGIN="http://testserver")
    assert response.status_code == 204
    profile = get_profile_store().load(visitor_id, None, record_view=False,
                                       now=timezone.now().timestamp())
    assert profile.clicked == frozenset({"hero"}) and profile.abandoned == frozenset({"offer"})
    expected = summarize(validate_batch({"v": 1, "events": events}, now=timezone.now(),
                                        max_events=100)).engagement
    assert profile.engagement == pytest.approx(expected, rel=1e-6)  # once, not twice
    drain(sink)
    assert Event.objects.filter(visitor_id=visitor_id).count() == 2


def test_the_stream_sink_applies_the_update_in_its_round_trip(stream_sink, redis_store):
    update = summarize(rows(3))
    assert stream_sink.write(Batch("w" * 32, rows(3), received_at=NOW, update=update)) is True
    profile = get_profile_store().load("w" * 32, None, record_view=False, now=NOW.timestamp())
    assert profile.clicked == frozenset({"hero"})


def test_the_database_sink_leaves_the_update_to_the_caller(database_sink, redis_store):
    update = summarize(rows(3))
    assert database_sink.write(Batch("w" * 32, rows(3), received_at=NOW, update=update)) is False
    profile = get_profile_store().load("w" * 32, None, record_view=False, now=NOW.timestamp())
    assert profile.clicked == frozenset()


def test_a_full_stream_refuses_the_batch_and_keeps_nothing_of_it(stream_sink, settings, client):
    settings.MICROADJUST_EVENT_STREAM_MAX_BATCHES = 2
    settings.MICROADJUST_EVENT_STREAM_RETRY_AFTER = 17
    stream_sink.write(Batch("a" * 32, rows(3), received_at=NOW))
    stream_sink.write(Batch("b" * 32, rows(3), received_at=NOW))
    with pytest.raises(SinkFull) as refused:
        stream_sink.write(Batch("c" * 32, rows(3), received_at=NOW,
                                update=summarize(rows(3))))
    assert refused.value.retry_after == 17
    assert stream_sink.backlog()["pending_batches"] == 2
    drain(stream_sink)
    assert set(Event.objects.values_list("visitor_id", flat=True)) == {"a" * 32, "b" * 32}


def test_collect_answers_503_with_retry_after_when_the_stream_is_full(stream_sink, settings):
    import json

    from .helpers import visitor_client

    settings.MICROADJUST_EVENT_STREAM_MAX_BATCHES = 1
    visitor = visitor_client()
    t = int(timezone.now().timestamp() * 1000)
    body = json.dumps({"v": 1, "events": [{"type": "pageview", "t": t, "page": 3}]})

    def post():
        return visitor.post("/microadjust/collect/", data=body, content_type="application/json",
                            HTTP_ORIGIN="http://testserver")

    assert post().status_code == 204
    refused = post()
    assert refused.status_code == 503 and refused["Retry-After"] == "30"
    assert refused.json()["error"] == "unavailable"
    drain(stream_sink)
    assert Event.objects.count() == 1  # the refused batch is the tracker's to send again
    assert post().status_code == 204  # the loader drained the stream: room again


@pytest.fixture
def redis_down_sink(stream_sink, settings):
    """The stream sink pointed at a closed port: every Redis call fails fast."""
    settings.CACHES = {**settings.CACHES, "redis-down": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:9/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2}}}
    settings.MICROADJUST_REDIS_ALIAS = "redis-down"
    get_event_sink.cache_clear()
    return get_event_sink()


def test_redis_down_the_batch_goes_to_the_database_with_its_id(redis_down_sink):
    from microadjust_cms.tracking.models import LoadedBatch

    batch = Batch("a" * 32, rows(3), received_at=NOW, update=summarize(rows(3)))
    assert redis_down_sink.write(batch) is False  # the profile update is the caller's
    assert Event.objects.filter(visitor_id="a" * 32).count() == 3
    assert LoadedBatch.objects.filter(batch_id=batch.batch_id).exists()
    redis_down_sink.write(batch)  # the same batch again: skipped by its id
    assert Event.objects.count() == 3


def test_redis_down_without_the_fallback_is_sink_unavailable(redis_down_sink, settings):
    settings.MICROADJUST_EVENT_STREAM_FALLBACK = False
    with pytest.raises(SinkUnavailable):
        redis_down_sink.write(Batch("a" * 32, rows(3), received_at=NOW))
    assert Event.objects.count() == 0


def test_a_batch_written_by_the_fallback_and_found_in_the_stream_is_loaded_once(stream_sink):
    """Redis appended it but the answer was lost: the fallback wrote it too; the loader finds
    its id and skips it."""
    from microadjust_cms.tracking.sinks.database import write_with_batch_id

    batch = Batch("b" * 32, rows(3), received_at=NOW)
    stream_sink.write(batch)
    write_with_batch_id(batch)
    drain(stream_sink)
    assert Event.objects.count() == 3


def test_received_at_defaults_to_now(sink):
    before = timezone.now() - timedelta(seconds=1)
    sink.write(Batch("v" * 32, rows(3)))
    drain(sink)
    assert all(row["received_at"] >= before for row in stored())


def test_the_collect_rate_limit_holds_on_every_sink(sink, settings):
    """django-ratelimit before the database sink; the stream sink's script counts it itself."""
    import json

    from .helpers import visitor_client

    settings.MICROADJUST_COLLECT_RATE = "3/m"
    t = int(timezone.now().timestamp() * 1000)
    body = json.dumps({"v": 1, "events": [{"type": "pageview", "t": t, "page": 3}]})

    def post(client):
        return client.post("/microadjust/collect/", data=body, content_type="application/json",
                           HTTP_ORIGIN="http://testserver")

    visitor = visitor_client()
    assert [post(visitor).status_code for _ in range(4)] == [204, 204, 204, 429]
    assert post(visitor_client()).status_code == 204  # another visitor: its own allowance
    from django.test import Client

    newcomer = [post(Client()).status_code for _ in range(4)]  # no cookie: counted by address
    assert newcomer == [204, 204, 204, 429]
    drain(sink)
    assert Event.objects.count() == 7


def test_the_stream_script_updates_the_profile_as_the_profile_store_does(stream_sink, redis_store):
    """The sink passes the update as one JSON argument; the store, argument by argument: the
    same profile either way (engagement, affinity, scroll, dwell, abandons, clicks)."""
    now = timezone.now()
    t = int(now.timestamp() * 1000)
    events = [{"type": "dwell", "t": t, "page": 3, "block": "hero", "variant": "v1", "value": 4200,
               "kind": "video", "tags": "cats dogs"},
              {"type": "scroll", "t": t, "page": 3, "value": 75},
              {"type": "click", "t": t, "page": 3, "block": "hero", "variant": "v1", "name": "Go"},
              {"type": "abandon", "t": t, "page": 3, "block": "offer", "variant": "default",
               "value": 300, "kind": "article"},
              {"type": "conversion", "t": t, "name": "signup"}]
    batch_rows = validate_batch({"v": 1, "events": events}, now=now, max_events=10)
    update = summarize(batch_rows)
    store = get_profile_store()
    assert stream_sink.write(Batch("s" * 32, batch_rows, received_at=now, update=update)) is True
    store.record_events("r" * 32, update, now=time.time())
    by_sink = store.load("s" * 32, "3", record_view=False, now=time.time())
    by_store = store.load("r" * 32, "3", record_view=False, now=time.time())
    assert by_sink.engagement == pytest.approx(by_store.engagement, rel=1e-6) and by_sink.engagement > 0
    assert by_sink.affinity.keys() == by_store.affinity.keys() == {"video", "cats", "dogs"}
    for name, points in by_store.affinity.items():
        assert by_sink.affinity[name] == pytest.approx(points, rel=1e-6)
    assert (by_sink.page_scroll, by_sink.page_dwell) == (by_store.page_scroll, by_store.page_dwell) == (75, 4.2)
    assert (by_sink.abandoned, by_sink.clicked) == (by_store.abandoned, by_store.clicked)
    assert by_sink.conversions == by_store.conversions == 1


def test_the_stream_script_counts_auto_optimize_trials_in_the_same_round_trip(stream_sink, redis_store):
    """Events carrying ``opt`` reach the block's counters through the append script itself."""
    now = timezone.now()
    t = int(now.timestamp() * 1000)
    events = [{"type": "impression", "t": t, "page": 3, "block": "mod", "variant": "video",
               "opt": "cluster-2 complete"},
              {"type": "click", "t": t, "page": 3, "block": "mod", "variant": "video",
               "opt": "cluster-2 complete"},
              {"type": "conversion", "t": t, "page": 3, "block": "mod", "variant": "video",
               "name": "complete", "opt": "cluster-2 complete"}]
    rows = validate_batch({"v": 1, "events": events}, now=now, max_events=10)
    update = summarize(rows)
    assert update.counters == {"mod": {"n|cluster-2|video": 1, "s|cluster-2|video": 1}}
    stream_sink.write(Batch("q" * 32, rows, received_at=now, update=update))  # scripts cached
    with redis_commands_sent() as sent:
        assert stream_sink.write(Batch("q" * 32, rows, received_at=now, update=update)) is True
    assert len(sent) == 1
    assert get_profile_store().load_counters(["mod"]) == {
        "mod": {"n|cluster-2|video": 2, "s|cluster-2|video": 2}}
