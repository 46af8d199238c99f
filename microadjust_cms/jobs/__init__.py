"""Background jobs: what runs them (``runner``: ``run_job``, one path for Celery, commands and
the admin), their rows (``models``), locks, the beat schedule and event retention."""

from typing import Any

_RUNNER = ("run_job", "prepare_job", "purge_old_events", "job_function", "check_kind", "mark_failed",
           "UnknownJobKind", "PurgeResult", "ProgressRecorder")


def __getattr__(name: str) -> Any:
    if name in _RUNNER:  # ``microadjust_cms.jobs.run_job``: the documented entry point
        from importlib import import_module

        return getattr(import_module("microadjust_cms.jobs.runner"), name)
    raise AttributeError(f"module 'microadjust_cms.jobs' has no attribute {name!r}")
