"""The "Learning jobs" admin page: recent runs and buttons that queue one (a leaf: only
``wagtail_hooks`` imports this)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from wagtail.admin import messages
from wagtail.admin.menu import MenuItem
from wagtail.admin.ui.tables import Column, DateColumn, StatusTagColumn, UserColumn
from wagtail.admin.views.generic.base import BaseListingView

from ..conf import get_setting
from ..jobs.models import LearningJob

logger = logging.getLogger(__name__)

RUN_PERMISSION = "microadjust_cms.run_learning_jobs"
VIEW_PERMISSION = "microadjust_cms.view_learningjob"
#: Seconds between reloads of the page while a job is queued or running.
REFRESH_SECONDS = 3
BUTTONS = [("recluster", gettext_lazy("Recluster now")), ("train", gettext_lazy("Train now")),
           ("purge", gettext_lazy("Purge old events"))]


def can_view(user) -> bool:
    return user.has_perm(RUN_PERMISSION) or user.has_perm(VIEW_PERMISSION)


def progress_display(job: LearningJob) -> str:
    if job.progress_percent is None:
        return ""
    return f"{job.progress_percent}% ({job.progress_done}/{job.progress_total})"


class LearningJobsView(BaseListingView):
    page_title = gettext_lazy("Learning jobs")
    header_icon = "cogs"
    template_name = "microadjust_cms/admin/learning_jobs.html"
    index_url_name = "microadjust_jobs:index"
    paginate_by = 25
    verbose_name_plural = gettext_lazy("learning jobs")
    columns = [
        Column("id", label=gettext_lazy("Job"), accessor=lambda job: f"#{job.pk}"),
        Column("kind", label=gettext_lazy("Job kind"), accessor="get_kind_display"),
        StatusTagColumn("status", label=gettext_lazy("Status"), accessor="get_status_display",
                        primary=lambda job: job.status == LearningJob.Status.DONE),
        Column("progress", label=gettext_lazy("Progress"), accessor=progress_display),
        UserColumn("queued_by", label=gettext_lazy("Queued by"),
                   blank_display_name=gettext_lazy("Schedule or command")),
        DateColumn("created_at", label=gettext_lazy("Queued")),
        DateColumn("finished_at", label=gettext_lazy("Finished")),
        Column("message", label=gettext_lazy("Result")),
    ]

    def dispatch(self, request, *args, **kwargs):
        if not can_view(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_base_queryset(self):
        return LearningJob.objects.select_related("queued_by")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_run"] = self.request.user.has_perm(RUN_PERMISSION)
        context["buttons"] = [(reverse("microadjust_jobs:run", args=[kind]), label)
                              for kind, label in BUTTONS]
        context["refresh_seconds"] = REFRESH_SECONDS if has_active_jobs() else None
        return context


def has_active_jobs() -> bool:
    """A job queued or running, younger than the lock timeout (a crashed run stops counting)."""
    since = timezone.now() - timedelta(seconds=get_setting("JOB_LOCK_TIMEOUT"))
    return LearningJob.objects.filter(
        status__in=[LearningJob.Status.QUEUED, LearningJob.Status.RUNNING], created_at__gte=since,
    ).exists()


@require_POST
def run_learning_job(request: HttpRequest, kind: str) -> HttpResponse:
    """Queue a job of ``kind`` for the user, then back to the list."""
    from ..tasks import TASKS

    if not request.user.has_perm(RUN_PERMISSION):
        raise PermissionDenied
    if kind not in TASKS:
        raise Http404(f"No learning job {kind!r}")
    job = LearningJob.objects.create(kind=kind, queued_by=request.user)
    label = job.get_kind_display()
    # After the commit, so a worker never looks for a row it cannot see yet.
    transaction.on_commit(lambda: _queue(request, job, label))
    return HttpResponseRedirect(reverse("microadjust_jobs:index"))


def _queue(request: HttpRequest, job: LearningJob, label: str) -> None:
    from ..tasks import TASKS

    try:
        result = TASKS[job.kind].delay(job_id=job.pk)
    except Exception as exc:  # the broker is down: say so, do not leave a row queued forever
        logger.exception("Could not queue learning job #%s", job.pk)
        LearningJob.objects.filter(pk=job.pk, status=LearningJob.Status.QUEUED).update(
            status=LearningJob.Status.FAILED, finished_at=timezone.now(),
            message=f"Could not queue the job: {type(exc).__name__}: {exc}")
        messages.error(request, _("%(job)s could not be queued: %(error)s") % {"job": label, "error": exc})
        return
    LearningJob.objects.filter(pk=job.pk, celery_task_id="").update(celery_task_id=result.id or "")
    job.refresh_from_db()
    if job.status == LearningJob.Status.QUEUED or job.status == LearningJob.Status.RUNNING:
        messages.success(request, _("%(job)s queued (job #%(id)s).") % {"job": label, "id": job.pk})
    elif job.status == LearningJob.Status.DONE:  # eager Celery (the demo) ran it already
        messages.success(request, _("%(job)s finished (job #%(id)s): %(message)s")
                         % {"job": label, "id": job.pk, "message": job.message})
    else:
        messages.warning(request, _("%(job)s %(status)s (job #%(id)s): %(message)s") % {
            "job": label, "status": job.get_status_display().lower(), "id": job.pk,
            "message": job.message})


class LearningJobsMenuItem(MenuItem):
    def is_shown(self, request: HttpRequest) -> bool:
        return can_view(request.user)


def menu_item() -> MenuItem:
    return LearningJobsMenuItem(_("Learning jobs"), reverse("microadjust_jobs:index"),
                                icon_name="cogs", order=500)


urlpatterns = [
    path("", LearningJobsView.as_view(), name="index"),
    path("run/<slug:kind>/", run_learning_job, name="run"),
]
