"""Learning jobs: the one path every run takes, whether Celery, a command or an admin button
started it. ``run_job`` takes the kind's lock, moves the job's ``LearningJob`` row from queued
to running to a final status, records progress and stores the summary or the error.

Plain functions, no Celery import: ``tasks.py`` wraps them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any, NamedTuple

import redis.exceptions
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from ..conf import get_setting
from ..learning import Progress
from .locks import JobLock, job_lock

if TYPE_CHECKING:
    from .models import LearningJob

logger = logging.getLogger(__name__)

#: kind -> dotted path of a function taking ``progress=`` (and options) and returning a result
#: whose ``str()`` is a one-line summary. Imported when a job runs, not before.
JOBS: dict[str, str] = {
    "recluster": "microadjust_cms.learning.cluster_runs.recluster",
    "train": "microadjust_cms.learning.engagement.train_model",
    "purge": "microadjust_cms.jobs.runner.purge_old_events",
}

#: Errors worth another try a little later (a database or Redis restart, a dropped connection).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError, InterfaceError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
)


class UnknownJobKind(ValueError):
    pass


class PurgeResult(NamedTuple):
    deleted: int
    days: int

    def __str__(self) -> str:
        return f"Deleted {self.deleted} events older than {self.days} days."


def purge_old_events(*, days: int | None = None, progress: Progress | None = None) -> PurgeResult:
    """The purge job: ``retention.purge_events`` (one DELETE, so progress is 0/1 then 1/1)."""
    from .retention import purge_events

    keep = get_setting("EVENT_RETENTION_DAYS") if days is None else days
    if progress:
        progress(0, 1)
    deleted = purge_events(days=keep)
    if progress:
        progress(1, 1)
    return PurgeResult(deleted, keep)


def job_function(kind: str) -> Callable[..., Any]:
    """Import the function behind ``kind`` (ImportError while its module is not installed)."""
    module_path, _, name = JOBS[kind].rpartition(".")
    return getattr(import_module(module_path), name)


def check_kind(kind: str) -> None:
    if kind not in JOBS:
        raise UnknownJobKind(f"Unknown learning job {kind!r}; known: {', '.join(sorted(JOBS))}.")


def prepare_job(kind: str, job_id: int | None = None, *, celery_task_id: str = "") -> LearningJob:
    """The job row to run: ``job_id``'s, or a new queued one (a beat run has no row yet)."""
    from .models import LearningJob

    check_kind(kind)
    if job_id is None:
        return LearningJob.objects.create(kind=kind, celery_task_id=celery_task_id)
    job = LearningJob.objects.get(pk=job_id)
    if job.kind != kind:
        raise UnknownJobKind(f"Job #{job.pk} is a {job.kind} job, not {kind}.")
    if celery_task_id and not job.celery_task_id:
        LearningJob.objects.filter(pk=job.pk).update(celery_task_id=celery_task_id)
        job.celery_task_id = celery_task_id
    return job


class ProgressRecorder:
    """The ``progress(done, total)`` callback a job reports to.

    Writes to the row at most once per whole percent and ``JOB_PROGRESS_INTERVAL`` seconds (a job
    may report every item), always at the end; each write also pushes the lock's expiry back.
    """

    def __init__(self, job_id: int, lock: JobLock, listener: Progress | None = None) -> None:
        self.job_id = job_id
        self.lock = lock
        self.listener = listener
        self.interval = get_setting("JOB_PROGRESS_INTERVAL")
        self.written: tuple[int, int] | None = None
        self.written_at = float("-inf")
        self.writes = 0

    def __call__(self, done: int, total: int) -> None:
        if self.listener is not None:
            self.listener(done, total)
        if (done, total) == self.written:
            return
        finished = total > 0 and done >= total
        if not finished and self.written is not None:
            from .models import whole_percent

            if total == self.written[1] and whole_percent(done, total) == whole_percent(*self.written):
                return
            if time.monotonic() - self.written_at < self.interval:
                return
        self._write(done, total)

    def _write(self, done: int, total: int) -> None:
        from .models import LearningJob

        LearningJob.objects.filter(pk=self.job_id).update(progress_done=max(0, done),
                                                          progress_total=max(0, total))
        self.written, self.written_at = (done, total), time.monotonic()
        self.writes += 1
        self.lock.refresh()


def run_job(kind: str, job_id: int | None = None, *, retry_on: tuple[type[BaseException], ...] = (),
            on_progress: Progress | None = None, **kwargs: Any) -> LearningJob:
    """Run job ``job_id`` (or a new job) of ``kind`` to a final status and return its row.

    ``kwargs`` go to the job function. A finished job is returned untouched (a redelivered task
    does nothing). When another run holds the kind's lock the job is marked skipped. Errors are
    stored on the row, except those in ``retry_on``: the row goes back to queued and the error
    propagates, for the caller (a Celery task) to retry. The returned row carries the job
    function's return value as ``outcome`` (None unless it ran now and succeeded).
    """
    from .models import LearningJob

    Status = LearningJob.Status
    job = prepare_job(kind, job_id)
    job.outcome = None
    if job.is_final or job.status == Status.RUNNING:
        return job
    lock = job_lock(kind, owner=str(job.pk))
    if not lock.acquire():
        _finish(job, Status.SKIPPED, _skip_message(job), only_from=Status.QUEUED)
        return job
    try:
        claimed = LearningJob.objects.filter(pk=job.pk, status=Status.QUEUED).update(
            status=Status.RUNNING, started_at=timezone.now(), message="")
        if not claimed:  # another delivery of the same job got here first
            job.refresh_from_db()
            return job
        job.status = Status.RUNNING
        recorder = ProgressRecorder(job.pk, lock, on_progress)
        try:
            result = job_function(kind)(progress=recorder, **kwargs)
        except retry_on as exc:
            LearningJob.objects.filter(pk=job.pk).update(
                status=Status.QUEUED, message=f"Retrying after a transient error: {_describe(exc)}")
            raise
        except Exception as exc:
            logger.exception("Learning job %s #%s failed", kind, job.pk)
            _finish(job, Status.FAILED, _describe(exc))
            return job
        _finish(job, Status.DONE, str(result))
        job.outcome = result
        return job
    finally:
        lock.release()


def mark_failed(job_id: int | None, error: BaseException) -> None:
    """Record a failure that happened outside ``run_job`` (retries exhausted); best effort."""
    from .models import LearningJob

    if job_id is None:
        return
    try:
        job = LearningJob.objects.get(pk=job_id)
        if not job.is_final:
            _finish(job, LearningJob.Status.FAILED, _describe(error))
    except Exception:
        logger.exception("Could not mark learning job #%s failed", job_id)


def _finish(job: LearningJob, status: str, message: str, only_from: str | None = None) -> None:
    from .models import LearningJob

    rows = LearningJob.objects.filter(pk=job.pk)
    if only_from:
        rows = rows.filter(status=only_from)
    now = timezone.now()
    if rows.update(status=status, message=message, finished_at=now):
        job.status, job.message, job.finished_at = status, message, now
    else:
        job.refresh_from_db()


def _skip_message(job: LearningJob) -> str:
    from .models import LearningJob

    holder = (LearningJob.objects.filter(kind=job.kind, status=LearningJob.Status.RUNNING)
              .exclude(pk=job.pk).order_by("-started_at").first())
    if holder:
        running = f"job #{holder.pk}, started {timezone.localtime(holder.started_at):%Y-%m-%d %H:%M:%S}"
    else:
        running = "another process"
    return (f"Skipped: another {job.get_kind_display().lower()} run holds the lock ({running}). "
            "Try again when it has finished.")


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:2000]
