"""Wagtail finds an app's hooks in ``<app>.wagtail_hooks``; ours live in ``admin.hooks``."""

from .admin import hooks  # noqa: F401  (registers the hooks)
