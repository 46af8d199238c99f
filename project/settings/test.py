"""Tests: SQLite by default, PostgreSQL when DATABASE_URL is set (CI sets it)."""

import os
import tempfile

import dj_database_url

from .base import *  # noqa: F403

SECRET_KEY = "tests-only"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.config()}
else:
    # A file, not ":memory:": the browser tests' live server answers requests on several threads
    # at once (Wagtail's editing-session pings), and an in-memory database is one connection
    # shared between them, which SQLite rejects ("bad parameter or other API misuse").
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": ":memory:",
        "TEST": {"NAME": os.path.join(tempfile.gettempdir(),
                                      f"microadjust-test-{os.getpid()}.sqlite3")},
    }}
# The Redis used by tests that need the real server (never the production database).
MICROADJUST_TEST_REDIS_URL = os.environ.get("MICROADJUST_TEST_REDIS_URL",
                                            "redis://127.0.0.1:6379/15")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "redis": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": MICROADJUST_TEST_REDIS_URL,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    },
}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# The real-worker tests (tests/celery_worker.py) start `celery -A project worker` with these
# settings and two variables: the test database the test process made (its name differs from
# the one above: a "test_" prefix on PostgreSQL, a per-process file on SQLite) and the broker.
if os.environ.get("MICROADJUST_TEST_WORKER_DATABASE"):
    DATABASES["default"]["NAME"] = os.environ["MICROADJUST_TEST_WORKER_DATABASE"]
if os.environ.get("MICROADJUST_TEST_WORKER_REDIS_STORE"):
    # The worker writes cluster assignments where the test reads them: the real Redis.
    MICROADJUST_PROFILE_STORE = "microadjust_cms.visitor.stores.redis.RedisProfileStore"
    MICROADJUST_REDIS_ALIAS = "redis"
if os.environ.get("MICROADJUST_TEST_WORKER_BROKER"):
    CELERY_TASK_ALWAYS_EAGER = False
    CELERY_BROKER_URL = os.environ["MICROADJUST_TEST_WORKER_BROKER"]

# Experiments: no global holdout in tests, so a random visitor id never turns personalization off
# (the holdout's own tests set MICROADJUST_EXPERIMENT_HOLDOUT).
MICROADJUST_EXPERIMENT_HOLDOUT = 0
# One loader thread: a test's transaction is the main thread's connection, which other threads'
# connections cannot see into (tests/test_event_loader.py runs several on a transactional database).
MICROADJUST_EVENT_LOADER_THREADS = 1
