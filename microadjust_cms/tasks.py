"""Celery tasks: thin wrappers around plain functions (Celery itself is optional)."""

from celery import shared_task

from .retention import purge_events


@shared_task(name="microadjust_cms.purge_events")
def purge_old_events() -> int:
    return purge_events()
