"""Fixtures for the event sinks: the database sink, and the Redis Streams sink on the real Redis
(the suite's database 15) under a key prefix of the test's own, deleted afterwards: no flush."""

from __future__ import annotations

import uuid

import pytest

from microadjust_cms.tracking.sinks import get_event_sink

STREAM_SINK = "microadjust_cms.tracking.sinks.redis_stream.RedisStreamSink"
DATABASE_SINK = "microadjust_cms.tracking.sinks.database.DatabaseSink"


@pytest.fixture
def own_prefix(settings):
    """A key prefix no other test uses; its keys are deleted after the test."""
    from tests.conftest import _redis_or_fail

    _redis_or_fail()
    from django_redis import get_redis_connection

    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings.MICROADJUST_KEY_PREFIX = prefix
    settings.MICROADJUST_REDIS_ALIAS = "redis"
    yield prefix
    client = get_redis_connection("redis")
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def stream_sink(settings, own_prefix):
    settings.MICROADJUST_EVENT_SINK = STREAM_SINK
    get_event_sink.cache_clear()
    yield get_event_sink()
    get_event_sink.cache_clear()


@pytest.fixture
def database_sink(settings):
    settings.MICROADJUST_EVENT_SINK = DATABASE_SINK
    get_event_sink.cache_clear()
    yield get_event_sink()
    get_event_sink.cache_clear()


def drain(sink) -> None:
    """Whatever the sink holds, into the event table (a loader round for the stream sink)."""
    if sink.name == "redis-stream":
        from microadjust_cms.tracking.loader import EventLoader

        EventLoader(consumer="test").drain()
