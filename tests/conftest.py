import os

import pytest
from django.core.cache import caches
from django.core.management import call_command

from microadjust_cms import faults
from microadjust_cms.conditions import clear_compiled_cache
from microadjust_cms.experiments.runtime import experiment_cache
from microadjust_cms.learning.scoring import model_cache
from microadjust_cms.rendering import fragment_cache, stream_cache
from microadjust_cms.segments.clusters import cluster_cache
from microadjust_cms.segments.membership import segment_cache
from microadjust_cms.visitor.stores import get_profile_store

MOBILE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
TABLET_UA = ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
DESKTOP_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0 Safari/537.36")
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.fixture(autouse=True)
def _fresh_state(settings):
    caches["default"].clear()
    clear_compiled_cache()
    segment_cache.invalidate()
    cluster_cache.invalidate()
    experiment_cache.invalidate()  # the running experiments: a per-process copy
    model_cache.forget()  # test databases reuse model ids and versions
    fragment_cache.clear()  # test databases reuse page and revision ids
    stream_cache.clear()  # decoded stored texts (and what was derived from them under other settings)
    get_profile_store.cache_clear()
    faults.reset()  # failure counts, and when each kind was last logged
    yield
    get_profile_store.cache_clear()
    experiment_cache.invalidate()


def _redis_or_fail():
    import redis
    from django.conf import settings

    url = settings.MICROADJUST_TEST_REDIS_URL
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.RedisError as exc:
        message = f"Redis at {url} is not reachable ({exc}); start redis-server"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message + " (required in CI)")


@pytest.fixture
def redis_store(settings):
    """Point the profile store at the real Redis (database 15, flushed around each test)."""
    _redis_or_fail()
    settings.MICROADJUST_PROFILE_STORE = "microadjust_cms.visitor.stores.redis.RedisProfileStore"
    settings.MICROADJUST_REDIS_ALIAS = "redis"
    get_profile_store.cache_clear()
    from django_redis import get_redis_connection

    connection = get_redis_connection("redis")
    connection.flushdb()
    yield get_profile_store()
    connection.flushdb()


@pytest.fixture
def unreachable_redis_store(settings):
    """The Redis profile store pointed at a closed port: every call fails fast."""
    settings.CACHES = {**settings.CACHES, "redis-down": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:9/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2}}}
    settings.MICROADJUST_PROFILE_STORE = "microadjust_cms.visitor.stores.redis.RedisProfileStore"
    settings.MICROADJUST_REDIS_ALIAS = "redis-down"
    get_profile_store.cache_clear()
    return get_profile_store()


@pytest.fixture
def demo(db):
    call_command("load_demo", stdout=open(os.devnull, "w"))
    from project.demo.models import ArticlePage, HomePage

    return {"home": HomePage.objects.get(), "article": ArticlePage.objects.get(slug="article"),
            "course": ArticlePage.objects.get(slug="course")}


# The real Celery worker (tests/celery_worker.py): `celery_worker_process`, `live_celery`.
from tests.celery_worker import celery_worker_process, live_celery  # noqa: E402, F401

# Faults with real parts (tests/fault_servers.py): the test's own redis-server, database, gunicorn.
from tests.fault_servers import fault_site, own_database, stream_site  # noqa: E402, F401

# Event sinks (tests/sinks.py): `database_sink`, `stream_sink` (real Redis, a key prefix of its own).
from tests.sinks import database_sink, own_prefix, stream_sink  # noqa: E402, F401
