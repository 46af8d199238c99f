"""The admin's "Event pipeline" page and the loader's ``--status`` gauges."""

import io
import re

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django_redis import get_redis_connection

from microadjust_cms.tracking.schema import validate_batch
from microadjust_cms.tracking.sinks import Batch
from microadjust_cms.tracking.sinks.redis_stream import stream_key

from .test_admin_jobs import menu_urls

pytestmark = pytest.mark.django_db
URL = "/admin/microadjust/pipeline/"


def rows():
    from django.utils import timezone

    now = timezone.now()
    t = int(now.timestamp() * 1000)
    return validate_batch({"v": 1, "events": [{"type": "pageview", "t": t, "page": 3}]}, now=now,
                          max_events=10)


def test_the_database_sink_has_nothing_waiting(admin_client, admin_user, database_sink):
    response = admin_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-ma-pipeline="database"' in html and "in the request" in html
    assert re.search(r"data-ma-waiting>0<", html)
    assert URL in menu_urls(admin_user)
    if connection.vendor == "postgresql":
        assert "data-ma-partitions" in html  # the months of the partitioned event table


def test_the_stream_backlog_lag_and_dead_letters_are_shown(admin_client, stream_sink):
    for _ in range(3):
        stream_sink.write(Batch("a" * 32, rows()))
    get_redis_connection("redis").xadd(stream_key(0), {"garbage": "1"})
    html = admin_client.get(URL).content.decode()
    assert re.search(r"data-ma-waiting>4 / 200000", html)
    from microadjust_cms.tracking.loader import EventLoader

    EventLoader(consumer="admin-test").drain()
    html = admin_client.get(URL).content.decode()
    assert re.search(r"data-ma-waiting>0 /", html)
    assert re.search(r"data-ma-dead-count>1<", html)
    assert "data-ma-dead" in html and "unreadable entry" in html


def test_an_unreachable_stream_is_said_not_a_500(admin_client, stream_sink, settings):
    settings.CACHES = {**settings.CACHES, "redis-down": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:9/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2}}}
    settings.MICROADJUST_REDIS_ALIAS = "redis-down"
    from microadjust_cms.tracking.sinks import get_event_sink

    get_event_sink.cache_clear()
    response = admin_client.get(URL)
    assert response.status_code == 200
    assert "data-ma-error" in response.content.decode()


def test_editors_without_the_permission_are_refused(client, django_user_model):
    user = django_user_model.objects.create_user("editor", password="pw")
    user.groups.add(Group.objects.get(name="Editors"))
    client.force_login(user)
    response = client.get(URL)
    assert response.status_code in (302, 403)
    assert URL not in menu_urls(user)


def test_status_prints_prometheus_gauges(stream_sink):
    stream_sink.write(Batch("a" * 32, rows()))
    out = io.StringIO()
    call_command("microadjust_load_events", "--status", stdout=out)
    text = out.getvalue()
    assert 'microadjust_event_backlog_batches{sink="redis-stream"} 1' in text
    assert 'microadjust_event_sink_up{sink="redis-stream"} 1' in text
    assert "# TYPE microadjust_event_loader_lag_seconds gauge" in text
