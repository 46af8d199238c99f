"""The app's models: rule segments (snippets), events, learning jobs, clustering runs and the
cluster segments they maintain, engagement models, and what editors fix for clustering."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.contrib.settings.models import BaseGenericSetting, register_setting

from .conditions import ConditionError, is_empty, rules_over, validate_condition

#: The most clusters an editor may fix (more would not read as segments any more).
MAX_FIXED_K = 30


def referenced_segments(condition: object) -> set[str]:
    """Slugs a condition refers to through the ``segment`` signal."""
    found: set[object] = set()
    for rule in rules_over(condition, "segment"):
        value = rule.get("value")
        found.update(value if isinstance(value, list) else [value])
    return {s for s in found if isinstance(s, str)}


class ConditionField(models.JSONField):
    """A JSON column edited with the structured condition editor."""

    def formfield(self, **kwargs):
        from .forms import ConditionFormField

        return super().formfield(**{"form_class": ConditionFormField, **kwargs})


class Segment(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    slug = models.SlugField(_("slug"), max_length=100, unique=True,
                            help_text=_("Used by templates: {% ifvisitor segment=\"slug\" %}"))
    description = models.TextField(_("description"), blank=True)
    condition = ConditionField(_("condition"), default=dict, blank=True,
                                 help_text=_("Visitors matching these rules are in the segment."))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")

    def __str__(self) -> str:
        return self.name

    def clean_fields(self, exclude: object = None) -> None:
        """Check the condition here, not in ``clean``: when the form field already rejected it,
        Django excludes it and the editor sees that one error, not a second about a blank."""
        errors: dict[str, list] = {}
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if "condition" not in (exclude or ()) and "condition" not in errors:
            try:
                self._check_condition()
            except ValidationError as exc:
                errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def _check_condition(self) -> None:
        if is_empty(self.condition):
            raise ValidationError({"condition": _("Add at least one rule.")})
        try:
            validate_condition(self.condition)
        except ConditionError as exc:
            raise ValidationError({"condition": exc.errors}) from None
        self._check_cycles()

    def _check_cycles(self) -> None:
        graph = {s.slug: referenced_segments(s.condition)
                 for s in Segment.objects.exclude(pk=self.pk)}
        graph[self.slug] = referenced_segments(self.condition)
        seen: set[str] = set()
        stack = list(graph[self.slug])
        while stack:
            slug = stack.pop()
            if slug == self.slug:
                raise ValidationError({"condition": _(
                    "This segment refers to itself (directly or through other segments).")})
            if slug not in seen:
                seen.add(slug)
                stack.extend(graph.get(slug, ()))


@receiver(post_save, sender=Segment)
@receiver(post_delete, sender=Segment)
def _segments_changed(**_kwargs: object) -> None:
    from .segments import segment_cache

    segment_cache.invalidate()


class Event(models.Model):
    """One tracked interaction, stored durably (the collect endpoint writes these in batches).

    No IP address or User-Agent is kept: the visitor is the pseudonymous cookie id (or ``u<pk>``
    for a logged-in user). Rows older than ``EVENT_RETENTION_DAYS`` are purged.
    """

    class Type(models.TextChoices):
        PAGEVIEW = "pageview", _("Page view")
        IMPRESSION = "impression", _("Block impression")
        DWELL = "dwell", _("Dwell on a block")
        SCROLL = "scroll", _("Scroll depth milestone")
        CLICK = "click", _("Click in a block")
        ABANDON = "abandon", _("Block abandoned")
        CONVERSION = "conversion", _("Conversion")

    visitor_id = models.CharField(max_length=40)
    type = models.CharField(max_length=16, choices=Type.choices)
    occurred_at = models.DateTimeField(help_text=_("When the browser saw it (clamped to a day of "
                                                   "server time)."))
    received_at = models.DateTimeField(auto_now_add=True)
    page_id = models.PositiveIntegerField(null=True, blank=True)
    path = models.CharField(max_length=200, blank=True)
    previous_path = models.CharField(max_length=200, blank=True)
    block_id = models.CharField(max_length=64, blank=True)
    variant = models.CharField(max_length=50, blank=True)
    #: Dwell in milliseconds, scroll depth in percent; empty for other types.
    value = models.PositiveIntegerField(null=True, blank=True)
    #: Goal name for conversions, the clicked element's label for clicks.
    name = models.CharField(max_length=100, blank=True)
    #: What the block holds, as it declared it: a content type and space-separated tags.
    content_type = models.CharField(max_length=32, blank=True)
    tags = models.CharField(max_length=170, blank=True)
    #: The device class of the browser that sent the batch (mobile, tablet, desktop, bot): the
    #: User-Agent itself is never stored.
    device = models.CharField(max_length=8, blank=True)
    #: Where the block stood: its position in a RankedBlock (``data-ma-pos``), else its index
    #: among the page's tracked blocks; 0 first. Empty for page events.
    position = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("event")
        indexes = [
            models.Index(fields=["visitor_id", "occurred_at"], name="ma_event_visitor"),
            models.Index(fields=["block_id", "type", "occurred_at"], name="ma_event_block"),
            models.Index(fields=["page_id", "type", "occurred_at"], name="ma_event_page"),
            models.Index(fields=["occurred_at"], name="ma_event_time"),
        ]

    def __str__(self) -> str:
        return f"{self.type} by {self.visitor_id} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"


# --- Learning jobs (issue 4, Celery section) ---------------------------------------------------

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


# -- Clustering (learning/clustering.py): runs and the cluster segments they maintain --------

class ClusterRun(models.Model):
    """One clustering run: what it saw, what it found, and the numbers to place a new visitor.

    Centroid rows follow ``slugs``; ``centroids`` are in original feature units,
    ``centroids_standardized`` in the run's z-scores (``(x - scaler_means) / scaler_scales``).
    """

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        TOO_FEW = "too_few", _("Too few visitors")
        FAILED = "failed", _("Failed")

    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    duration_seconds = models.FloatField(_("duration (s)"), null=True, blank=True)
    visitors = models.PositiveIntegerField(_("visitors"), default=0)
    k = models.PositiveSmallIntegerField(null=True, blank=True)
    method = models.CharField(_("method"), max_length=16, blank=True)
    silhouette = models.FloatField(_("silhouette"), null=True, blank=True)
    silhouette_by_k = models.JSONField(default=dict, blank=True)
    sizes = models.JSONField(default=list, blank=True)
    slugs = models.JSONField(default=list, blank=True)
    feature_names = models.JSONField(default=list, blank=True)
    centroids = models.JSONField(default=list, blank=True)
    centroids_standardized = models.JSONField(default=list, blank=True)
    scaler_means = models.JSONField(default=list, blank=True)
    scaler_scales = models.JSONField(default=list, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RUNNING)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = _("cluster run")
        verbose_name_plural = _("cluster runs")

    def __str__(self) -> str:
        when = f"{self.started_at:%Y-%m-%d %H:%M}"
        if self.status == self.Status.DONE:
            silhouette = f"{self.silhouette:.2f}" if self.silhouette is not None else "n/a"
            return (f"Cluster run {self.pk} at {when}: {self.visitors} visitors, k={self.k} ({self.method}), "
                    f"silhouette {silhouette}, {self.duration_seconds or 0:.1f} s")
        detail = f": {self.error}" if self.error else ""
        return f"Cluster run {self.pk} at {when}: {self.get_status_display().lower()}{detail}"


class Cluster(models.Model):
    """A cluster segment. Its slug (``cluster-<number>``) never changes, so conditions that name
    it keep working while later runs match it; an editor's name (``name_is_custom``) is kept."""

    number = models.PositiveIntegerField(unique=True, editable=False)
    slug = models.SlugField(max_length=40, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=100)
    name_is_custom = models.BooleanField(_("renamed by an editor"), default=False, editable=False)
    description = models.TextField(_("description"), blank=True)
    centroid = models.JSONField(default=dict, blank=True, editable=False,
                                help_text=_("Feature → value at the last run (original units)."))
    centroid_standardized = models.JSONField(default=dict, blank=True, editable=False)
    size = models.PositiveIntegerField(_("visitors"), default=0, editable=False)
    active = models.BooleanField(_("active"), default=True, editable=False,
                                 help_text=_("Found by the latest run."))
    last_run = models.ForeignKey(ClusterRun, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="clusters", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-active", "number"]
        verbose_name = _("cluster")
        verbose_name_plural = _("clusters")

    def __str__(self) -> str:
        return self.name


@receiver(post_save, sender=ClusterRun)
@receiver(post_save, sender=Cluster)
@receiver(post_delete, sender=Cluster)
def _clusters_changed(**_kwargs: object) -> None:
    """As for engagement models: other processes are told once the change is committed (told
    inside a run's transaction, they could reload the old clusters and keep them)."""
    from django.db import transaction

    from .cluster_segments import cluster_cache

    cluster_cache.forget()
    transaction.on_commit(cluster_cache.invalidate)


# -- Engagement model (learning/engagement.py) ---------------------------------------------------


class EngagementModel(models.Model):
    """One training run of the engagement model: its figures, and the fitted estimator itself.

    The estimator is stored pickled (joblib) in the row, so every web and worker process loads
    the active one from the database; only code that writes this table writes that column.
    At most one row is ``active``; a run that is refused (too little data, AUC undefined) is
    kept with ``inactive_reason`` and the previous model stays active.
    """

    version = models.PositiveIntegerField(_("version"), unique=True)
    trained_at = models.DateTimeField(_("trained at"))
    window_days = models.PositiveIntegerField(_("window (days)"))
    training_rows = models.PositiveIntegerField(_("training rows"))
    positives = models.PositiveIntegerField(_("positives"), help_text=_(
        "Training impressions followed by a click or a long dwell."))
    held_out_rows = models.PositiveIntegerField(_("held-out rows"))
    auc = models.FloatField(_("AUC"), null=True, blank=True,
                            help_text=_("ROC AUC on the held-out (latest) impressions."))
    log_loss = models.FloatField(_("log loss"), null=True, blank=True)
    duration_seconds = models.FloatField(_("duration (s)"))
    feature_names = models.JSONField(_("feature names"), default=list)
    #: What the block features were built from: visitor feature columns, content types, tags.
    layout = models.JSONField(default=dict)
    estimator = models.BinaryField(null=True, editable=False)
    active = models.BooleanField(_("active"), default=False)
    inactive_reason = models.TextField(_("why not active"), blank=True)

    class Meta:
        ordering = ["-version"]
        verbose_name = _("engagement model")
        verbose_name_plural = _("engagement models")

    def __str__(self) -> str:
        auc = f"AUC {self.auc:.3f}" if self.auc is not None else "AUC n/a"
        loss = f"log loss {self.log_loss:.3f}" if self.log_loss is not None else "log loss n/a"
        state = "active" if self.active else f"not active: {self.inactive_reason}"
        return (f"engagement model v{self.version}: {self.training_rows} rows, {self.positives} "
                f"positives, {auc}, {loss}, {self.duration_seconds:.1f} s, {state}")


@receiver(post_save, sender=EngagementModel)
@receiver(post_delete, sender=EngagementModel)
def _engagement_models_changed(**_kwargs: object) -> None:
    """This process reloads the active model at once; others once the change is committed (told
    earlier, they could reload the old model and keep it)."""
    from django.db import transaction

    from .learning.scoring import model_cache

    model_cache.forget()
    transaction.on_commit(model_cache.invalidate)


# -- What editors may fix for the clustering runs (Settings → Clustering) ---------------------

@register_setting(icon="group")
class ClusteringSettings(BaseGenericSetting):
    """An editor's choices for every clustering run (nightly, the button, the command without
    options). Blank fields leave the decision to the site's settings: k by the silhouette within
    ``MICROADJUST_CLUSTER_K_RANGE``, the method ``MICROADJUST_CLUSTER_METHOD``."""

    class Method(models.TextChoices):
        KMEANS = "kmeans", _("MiniBatch k-means (any number of visitors)")
        HIERARCHICAL = "hierarchical", _("Hierarchical, Ward (small populations)")

    fixed_k = models.PositiveSmallIntegerField(
        _("number of clusters"), null=True, blank=True,
        validators=[MinValueValidator(2), MaxValueValidator(MAX_FIXED_K)],
        help_text=_("Leave blank to let each run choose it by the silhouette score."))
    method = models.CharField(
        _("method"), max_length=16, blank=True, choices=Method.choices,
        help_text=_("Leave blank for the site's default."))

    class Meta:
        verbose_name = _("clustering")


# -- Experiments (experiments/models.py): A/B/n tests, their arms, exclusion groups, exposures --
from .experiments.models import Arm, ExclusionGroup, Experiment, Exposure  # noqa: E402, F401
