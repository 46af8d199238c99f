"""The demo: SQLite, local-memory cache, eager Celery. No server needed."""

from .base import *  # noqa: F403

DEBUG = True
