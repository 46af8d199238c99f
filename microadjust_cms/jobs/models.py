"""Background learning jobs (recluster, train, purge): one row a run, the job's status page."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


def whole_percent(done: int, total: int) -> int:
    """A job's progress as the admin shows it (and as often as ``jobs`` writes it): 0 to 100."""
    return min(100, done * 100 // total) if total else 0


class LearningJob(models.Model):
    """One run of a background learning job (recluster, train, purge), whoever started it.

    The row is the job's status page: Celery tasks, management commands and the admin buttons all
    go through ``microadjust_cms.jobs.run_job``, which moves it from queued to a final status.
    """

    class Kind(models.TextChoices):
        RECLUSTER = "recluster", _("Recluster visitors")
        TRAIN = "train", _("Train the engagement model")
        PURGE = "purge", _("Purge old events")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices,
                              default=Status.QUEUED)
    queued_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+",
                                  verbose_name=_("queued by"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    #: The job's one-line summary when done, the error when failed, the reason when skipped.
    message = models.TextField(_("message"), blank=True)
    celery_task_id = models.CharField(_("Celery task id"), max_length=255, blank=True)

    FINAL_STATUSES = (Status.DONE, Status.FAILED, Status.SKIPPED)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("learning job")
        verbose_name_plural = _("learning jobs")
        permissions = [("run_learning_jobs", _("Can start learning jobs from the admin"))]
        indexes = [models.Index(fields=["kind", "status"], name="ma_job_kind_status")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}: {self.get_status_display()}"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES

    @property
    def progress_percent(self) -> int | None:
        """Whole percent done, or None while the job has not said how much work there is."""
        return whole_percent(self.progress_done, self.progress_total) if self.progress_total else None
