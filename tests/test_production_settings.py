"""The production settings module configures PostgreSQL and Redis from URLs."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, django
from django.conf import settings
django.setup()
from django.core.checks import run_checks
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "name": settings.DATABASES["default"]["NAME"],
    "cache": settings.CACHES["default"]["BACKEND"],
    "location": settings.CACHES["default"]["LOCATION"],
    "store": settings.MICROADJUST_PROFILE_STORE,
    "debug": settings.DEBUG,
    "checks": [m.id for m in run_checks() if m.id.startswith("microadjust_cms")],
}))
"""


def run_probe(env_extra):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL")}
    env.update({"DJANGO_SETTINGS_MODULE": "project.settings.production", **env_extra})
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_production_settings_read_urls():
    result = run_probe({"SECRET_KEY": "x" * 50, "DATABASE_URL": "postgres://u@db.example:5432/site",
                        "REDIS_URL": "redis://cache.example:6379/2", "ALLOWED_HOSTS": "example.com"})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["engine"] == "django.db.backends.postgresql"
    assert data["name"] == "site"
    assert data["cache"] == "django_redis.cache.RedisCache"
    assert data["location"] == "redis://cache.example:6379/2"
    assert data["store"] == "microadjust_cms.visitor.stores.redis.RedisProfileStore"
    assert data["debug"] is False
    assert data["checks"] == []


def test_production_settings_say_what_is_missing():
    result = run_probe({"DATABASE_URL": "postgres://u@db/site"})
    assert result.returncode != 0
    assert "Set the SECRET_KEY environment variable" in result.stderr
    result = run_probe({"SECRET_KEY": "x" * 50})
    assert "Set DATABASE_URL" in result.stderr


FAILING = """
import django
django.setup()
from django.test import Client, override_settings
from microadjust_cms.faults import counters
with override_settings(ROOT_URLCONF="tests.urls_failing", ALLOWED_HOSTS=["testserver"]):
    response = Client(raise_request_exception=False).get("/fail/")
print("status", response.status_code, "counted", counters["unhandled:ZeroDivisionError"])
"""


def test_production_logs_a_500_with_its_traceback_to_stderr_and_counts_it(tmp_path):
    """Django's default logs a 500 only by mail to ADMINS; production ships it to stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL")}
    env.update({"DJANGO_SETTINGS_MODULE": "project.settings.production", "SECRET_KEY": "x" * 50,
                "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"})
    result = subprocess.run([sys.executable, "-c", FAILING], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "status 500 counted 1" in result.stdout
    assert "ERROR django.request" in result.stderr
    assert "Internal Server Error: /fail/" in result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert "ZeroDivisionError" in result.stderr


def test_production_adds_django_postgres_on_postgresql():
    """Wagtail's search index on PostgreSQL needs django.contrib.postgres (system check E005)."""
    probe = ("import django; django.setup(); from django.conf import settings; "
             "print('django.contrib.postgres' in settings.INSTALLED_APPS)")
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL")}
    env.update({"DJANGO_SETTINGS_MODULE": "project.settings.production", "SECRET_KEY": "x" * 50})
    on_postgres = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                                 env={**env, "DATABASE_URL": "postgres://u@db/site"}, timeout=120)
    on_sqlite = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                               env={**env, "DATABASE_URL": "sqlite:///site.sqlite3"}, timeout=120)
    assert on_postgres.stdout.strip() == "True", on_postgres.stderr
    assert on_sqlite.stdout.strip() == "False", on_sqlite.stderr
