"""The shared shape of the learning job commands: run the job in this process through
``jobs.run_job`` (the path Celery and the admin take), draw a progress bar, print the summary."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from tqdm import tqdm


class _BarStream:
    """tqdm writes carriage returns and no newlines; Django's wrapper would add them."""

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text, ending="")

    def flush(self) -> None:
        self.out.flush()


class ProgressBar:
    """A ``progress(done, total)`` callback drawing a tqdm bar on the command's stderr."""

    def __init__(self, out: OutputWrapper, label: str) -> None:
        self.out = out
        self.label = label
        self.bar: tqdm | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.label, file=_BarStream(self.out), ascii=True,
                            ncols=80, disable=False)
        if total != self.bar.total:
            self.bar.total = total
            self.bar.refresh()
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class JobCommand(BaseCommand):
    kind = ""

    def add_arguments(self, parser):
        parser.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")

    def job_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Options for the job function (validate them here: raise CommandError)."""
        return {}

    def handle(self, *args, **options):
        from microadjust_cms.jobs.models import LearningJob
        from microadjust_cms.jobs.runner import run_job

        kwargs = self.job_options(options)
        label = LearningJob.Kind(self.kind).label
        bar = None if options["no_progress"] else ProgressBar(self.stderr, label)
        try:
            job = run_job(self.kind, on_progress=bar, **kwargs)
        finally:
            if bar is not None:
                bar.close()
        if job.status == LearningJob.Status.SKIPPED:
            raise CommandError(job.message)
        if job.status != LearningJob.Status.DONE:
            raise CommandError(f"{label} failed (job #{job.pk}): {job.message}")
        self.stdout.write(job.message)
