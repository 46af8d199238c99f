"""Production settings as a fault test serves them (``tests/fault_servers.py``): gunicorn,
PostgreSQL and Redis from ``DATABASE_URL`` and ``REDIS_URL``, which point at the test's own
database (through a proxy the test can cut) and its own redis-server. Only what a plain-HTTP
loopback test needs differs from production."""

import os

os.environ.setdefault("SECRET_KEY", "fault-tests-only-" + "x" * 40)

from project.settings.production import *  # noqa: E402, F403

ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
# Plain HTTP on loopback: secure cookies would never come back.
MICROADJUST_COOKIE_SECURE = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# The load comes from a few visitors sending many batches: the limit is not what is tested.
MICROADJUST_COLLECT_RATE = "100000/m"
# No collectstatic in a test: serve static names as they are.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# No global holdout: every visitor's page is personalized, so every page reads the profile.
MICROADJUST_EXPERIMENT_HOLDOUT = 0
ROOT_URLCONF = "tests.urls_fault"
# The browser test flushes the tracker itself; the 5 s interval flush would overlap its flush
# and send the kept batch twice (tracker.js resends what is stored until it is acknowledged).
MICROADJUST_TRACKER_FLUSH_MS = 600_000
# The database sink by default: the fault tests of collect while the database is cut off.
# tests/test_pipeline_faults.py serves the Redis Streams sink (FAULT_EVENT_SINK=stream).
if os.environ.get("FAULT_EVENT_SINK") != "stream":
    MICROADJUST_EVENT_SINK = "microadjust_cms.tracking.sinks.database.DatabaseSink"
