"""Production: PostgreSQL from DATABASE_URL, Redis from REDIS_URL (cache + profile store),
a real Celery broker. Every secret comes from the environment."""

import os

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403

DEBUG = False
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    raise ImproperlyConfigured("Set the SECRET_KEY environment variable for production.")
if not os.environ.get("DATABASE_URL"):
    raise ImproperlyConfigured("Set DATABASE_URL, e.g. postgres://user:password@host:5432/site")
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h]
WAGTAILADMIN_BASE_URL = os.environ.get("WAGTAILADMIN_BASE_URL", "")

DATABASES = {"default": dj_database_url.config(conn_max_age=600, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Wagtail's database search backend uses PostgreSQL's full-text fields there.
    INSTALLED_APPS = [*INSTALLED_APPS, "django.contrib.postgres"]  # noqa: F405
    # A database that does not answer fails a request in seconds (collect and the fragment API
    # answer 503) instead of holding a worker until the server's timeout kills it.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
_REDIS_TIMEOUTS = {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5}
CACHES = {
    # Wagtail (its site root paths behind every page URL), waffle and the rest of the site: with
    # Redis down a read is a miss and a write is dropped, so pages still render.
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {**_REDIS_TIMEOUTS, "IGNORE_EXCEPTIONS": True},
    },
    # microadjust_cms and the collect rate limit: the same Redis, but errors are raised, so each
    # use fails open its own documented way and the outage is counted and logged (faults.py).
    # (django-ratelimit on a cache that hides errors would refuse every batch with a 429.)
    "microadjust": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": _REDIS_TIMEOUTS,
    },
}
MICROADJUST_CACHE_ALIAS = "microadjust"
MICROADJUST_REDIS_ALIAS = "microadjust"
MICROADJUST_JOB_LOCK_CACHE = "microadjust"
RATELIMIT_USE_CACHE = "microadjust"
MICROADJUST_PROFILE_STORE = "microadjust_cms.visitor.stores.redis.RedisProfileStore"
# Collect appends to a Redis Stream (with the profile update, one round trip); run
# ``manage.py microadjust_load_events`` to write the events to PostgreSQL (docs/event-pipeline.md).
# EVENT_SINK=database writes each batch to the database in the request instead.
MICROADJUST_EVENT_SINK = {
    "database": "microadjust_cms.tracking.sinks.database.DatabaseSink",
}.get(os.environ.get("EVENT_SINK", ""), "microadjust_cms.tracking.sinks.redis_stream.RedisStreamSink")
MICROADJUST_COOKIE_SECURE = True

CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
# Prometheus scrapes /microadjust/metrics/ with this bearer token (unset: the endpoint is off).
# With gunicorn, also set PROMETHEUS_MULTIPROC_DIR (docs/monitoring.md).
MICROADJUST_METRICS_TOKEN = os.environ.get("METRICS_TOKEN") or None
SESSION_COOKIE_SECURE = True
# Behind a proxy that terminates TLS, Django must be told the request was https: the collect
# endpoint's origin check (like Django's CSRF check) compares the scheme, and would refuse every
# batch from an https page with a 403. Set FORWARDED_PROTO_HEADER=1 when the proxy sets
# X-Forwarded-Proto (and strips it from what clients send).
if os.environ.get("FORWARDED_PROTO_HEADER") == "1":
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_COOKIE_SECURE = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}

# Errors with their tracebacks to stderr (the process manager or container keeps it): Django's
# default sends a 500's traceback only to ADMINS by mail, and to nothing when ADMINS is empty.
# Failures the site survives (Redis or the database down) come from ``microadjust_cms.faults``,
# at most once a minute per kind, with how many happened since.
LOG_LEVEL = os.environ.get("LOG_LEVEL", "WARNING")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"},
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                   "formatter": "plain"},
    },
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
    "loggers": {
        # django.request: every 500 with its traceback; django.security: refused hosts, CSRF.
        "django": {"handlers": ["stderr"], "level": LOG_LEVEL, "propagate": False},
        "microadjust_cms": {"handlers": ["stderr"], "level": LOG_LEVEL, "propagate": False},
        "celery": {"handlers": ["stderr"], "level": LOG_LEVEL, "propagate": False},
    },
}
