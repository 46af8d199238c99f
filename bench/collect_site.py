"""Settings for bench/collect.py: the production settings on loopback (URLs: collect_urls)."""

from project.settings.production import *  # noqa: F403

ROOT_URLCONF = "collect_urls"
ALLOWED_HOSTS = ["127.0.0.1"]
MICROADJUST_COOKIE_SECURE = False
MICROADJUST_COLLECT_RATE = "100000/m"  # measure throughput, not the limiter's refusals
STORAGES = {**STORAGES, "staticfiles": {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
LOGGING = {"version": 1, "disable_existing_loggers": False}

