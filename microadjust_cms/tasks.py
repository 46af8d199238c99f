"""Celery tasks: thin wrappers around ``jobs.run_job`` (the Celery app lives in the site's project).

Each accepts ``job_id`` (the admin buttons create the row first) or creates its own row (beat).
Transient errors (database or Redis restarting) are retried with exponential backoff; a run
whose retries are exhausted is recorded as failed.
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from .jobs import runner as jobs


class LearningJobTask(Task):
    autoretry_for = jobs.TRANSIENT_ERRORS
    retry_backoff = True
    retry_jitter = True
    max_retries = 3

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        jobs.mark_failed((kwargs or {}).get("job_id"), exc)


def _run(task: Task, kind: str, job_id: int | None, **kwargs: Any) -> Any:
    job = jobs.prepare_job(kind, job_id, celery_task_id=task.request.id or "")
    if isinstance(task.request.kwargs, dict):
        # A retry re-sends the request's kwargs: make it run this row, not create another.
        task.request.kwargs["job_id"] = job.pk
    last_try = task.request.retries >= task.max_retries
    return jobs.run_job(kind, job.pk, retry_on=() if last_try else jobs.TRANSIENT_ERRORS, **kwargs)


@shared_task(bind=True, base=LearningJobTask, name="microadjust_cms.recluster")
def recluster(self: Task, job_id: int | None = None, k: int | None = None,
              method: str | None = None) -> str:
    """Cluster visitors again; returns the job's summary (or why it did not run)."""
    return _run(self, "recluster", job_id, k=k, method=method).message


@shared_task(bind=True, base=LearningJobTask, name="microadjust_cms.train_engagement_model")
def train_engagement_model(self: Task, job_id: int | None = None) -> str:
    """Train the engagement model; returns the job's summary (or why it did not run)."""
    return _run(self, "train", job_id).message


@shared_task(bind=True, base=LearningJobTask, name="microadjust_cms.purge_events")
def purge_old_events(self: Task, job_id: int | None = None, days: int | None = None) -> int | None:
    """Apply the event retention limit; returns how many events went (None if it did not run)."""
    job = _run(self, "purge", job_id, days=days)
    return job.outcome.deleted if job.outcome is not None else None


#: kind -> task, for callers that queue by kind (the admin buttons).
TASKS = {"recluster": recluster, "train": train_engagement_model, "purge": purge_old_events}


@shared_task(name="microadjust_cms.load_events", ignore_result=True)
def load_events(max_seconds: float = 50.0) -> str:
    """Drain the event streams for up to ``max_seconds`` (with the Redis Streams sink): for
    sites that run loaders from Celery beat (say every minute) instead of the long-running
    ``manage.py microadjust_load_events``. Returns the progress line."""
    from .conf import get_setting
    from .tracking.loader import drain_in_threads

    return drain_in_threads(get_setting("EVENT_LOADER_THREADS"), max_seconds=max_seconds).line()


@shared_task(name="microadjust_cms.refresh_rollups", ignore_result=True)
def refresh_rollups() -> str:
    """Rebuild the analytics rollups that may have changed (beat: ``ROLLUP_SCHEDULE``)."""
    from .jobs.rollups import describe
    from .jobs.rollups import refresh_rollups as refresh

    return describe(refresh())


@shared_task(name="microadjust_cms.find_anomalies", ignore_result=True)
def find_anomalies() -> str:
    """Check yesterday for spikes and drops (beat: ``ANOMALY_SCHEDULE``)."""
    from .jobs.rollups import find_anomalies as find

    found = find()
    return f"{len(found)} spike(s) or drop(s) found"
