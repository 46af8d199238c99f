"""What learning keeps: clustering runs and their clusters, engagement models, and what editors
fix for the clustering runs (Settings → Clustering)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.contrib.settings.models import BaseGenericSetting, register_setting

#: The most clusters an editor may fix (more would not read as segments any more).
MAX_FIXED_K = 30


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
