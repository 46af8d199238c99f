"""Experiments: A/B/n tests on personalized blocks, their arms, exclusion groups and exposures.

Designed for a report made of a few aggregate queries: exposures per arm are
``Exposure.objects.filter(experiment=e).values("arm")`` counts (one row per visitor and
experiment), conversions after first exposure are ``Exposure.objects.with_goal(e)`` (an
``EXISTS`` over the event table, found by the ``visitor_id`` index, within
``Experiment.measured_window``), and the metric over time groups by ``first_exposed_at``
truncated to a day.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import BooleanField, Case, Exists, OuterRef, Q, Subquery, Sum, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from modelcluster.fields import ParentalKey
from modelcluster.models import ClusterableModel
from wagtail.models import Orderable

from .forms import ExperimentForm

#: Waffle flag names are ``FLAG_PREFIX + slug`` (at most 100 characters, waffle's limit).
FLAG_PREFIX = "microadjust-exp-"
#: In the note of the flags this app creates (so a flag of the site's own is never deleted).
FLAG_NOTE_MARK = "(microadjust-cms)"


def flag_name_for(slug: str) -> str:
    return (FLAG_PREFIX + slug)[:100]


def new_salt() -> str:
    """A random salt: two experiments never split visitors the same way."""
    return uuid.uuid4().hex


class ExclusionGroup(models.Model):
    """Experiments in one group are mutually exclusive: each owns a slice of the group's
    traffic (``Experiment.group_share``), a visitor's place in the group is hashed with the
    group's salt, so they fall in at most one slice."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    salt = models.CharField(max_length=32, default=new_salt, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("exclusion group")
        verbose_name_plural = _("exclusion groups")

    def __str__(self) -> str:
        return self.name


class ExposureQuerySet(models.QuerySet):
    def with_goal(self, experiment: Experiment) -> ExposureQuerySet:
        """Exposures of ``experiment`` annotated ``reached`` (bool): the visitor reached the
        experiment's goal in ``Experiment.measured_window`` (from their first exposure)."""
        from ..tracking.models import Event

        goal = Event.objects.filter(experiment.goal_q(), visitor_id=OuterRef("visitor_id"),
                                    **experiment.measured_window())
        exposures = self.filter(experiment=experiment)
        if experiment.goal_type != Experiment.Goal.DWELL:
            return exposures.annotate(reached=Exists(goal))
        # Dwell reaches the goal on the visitor's total: the tracker sends dwell in chunks (at
        # each flush), so no single event need reach the threshold.
        total = goal.order_by().values("visitor_id").annotate(total=Sum("value")).values("total")[:1]
        return exposures.annotate(goal_dwell=Subquery(total)).annotate(reached=Case(
            When(goal_dwell__gte=(experiment.goal_threshold or 0) * 1000, then=Value(True)),
            default=Value(False), output_field=BooleanField()))


class Experiment(ClusterableModel):
    """An A/B/n test on blocks: variants of PersonalizedBlocks are bound to its arms with the
    ``experiment_arm`` signal; who is enrolled is decided by hashing (see ``assignment``)."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        RUNNING = "running", _("Running")
        PAUSED = "paused", _("Paused")
        FINISHED = "finished", _("Finished")

    class Goal(models.TextChoices):
        CONVERSION = "conversion", _("A conversion (goal name)")
        CLICK = "click", _("A click in a block (block id)")
        DWELL = "dwell", _("Dwell on a block at least N seconds")
        SCROLL = "scroll", _("Scroll at least N percent of a page")

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), max_length=60, unique=True, help_text=_(
        "Conditions name it: {\"signal\": \"experiment_arm\", \"param\": \"<slug>\", ...}."))
    hypothesis = models.TextField(_("hypothesis"), blank=True,
                                  help_text=_("What should change, for whom, and why."))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices,
                              default=Status.DRAFT)
    starts_at = models.DateTimeField(_("start"), null=True, blank=True,
                                     help_text=_("Blank: as soon as it is running."))
    ends_at = models.DateTimeField(_("end"), null=True, blank=True,
                                   help_text=_("Blank: until it is finished."))
    goal_type = models.CharField(_("goal"), max_length=12, choices=Goal.choices,
                                 default=Goal.CONVERSION)
    goal_name = models.CharField(_("goal name or block id"), max_length=100, blank=True,
                                 help_text=_("The conversion's name, or the block id clicked or "
                                             "dwelt on."))
    goal_threshold = models.PositiveIntegerField(_("goal threshold"), null=True, blank=True,
                                                 help_text=_("Seconds of dwell, or percent "
                                                             "scrolled."))
    salt = models.CharField(max_length=32, default=new_salt, editable=False)
    exclusion_group = models.ForeignKey(ExclusionGroup, null=True, blank=True,
                                        on_delete=models.SET_NULL, related_name="experiments",
                                        verbose_name=_("exclusion group"))
    group_share = models.PositiveSmallIntegerField(
        _("share of the group's traffic (%)"), default=50,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("Only with an exclusion group: the slice of its visitors this experiment "
                    "may enroll. The slices of a group add up to at most 100."))
    #: Where the slice starts in the group, fixed when the experiment joins the group, so the
    #: slices of the others never move.
    group_offset = models.FloatField(null=True, blank=True, editable=False)
    #: The waffle flag gating the experiment, by name (waffle's flag model is swappable):
    #: ``microadjust-exp-<slug>``, created with the experiment.
    flag_name = models.CharField(_("waffle flag"), max_length=100, blank=True, editable=False)
    priority = models.SmallIntegerField(
        _("priority"), default=0,
        help_text=_("When a block is bound to several experiments, the highest priority owns "
                    "it (its exposure is recorded)."))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # -- report (experiments/report.py): how the statistics are read -------------------------
    analysis_method = models.CharField(
        _("analysis method"), max_length=10, default="fixed", blank=True,
        choices=[("fixed", _("Fixed horizon: read once, at the planned sample size")),
                 ("sequential", _("Sequential (always valid): safe to look at any time"))],
        help_text=_("Fixed horizon is more powerful but only valid when read once; the sequential "
                    "mSPRT may be checked every day."))

    base_form_class = ExperimentForm

    class Meta:
        ordering = ["-priority", "name"]
        verbose_name = _("experiment")
        verbose_name_plural = _("experiments")
        #: The report's start / pause / finish buttons (experiments/admin_views.py).
        permissions = [("start_experiment", "Can start an experiment"),
                       ("pause_experiment", "Can pause or resume an experiment"),
                       ("finish_experiment", "Can finish an experiment")]

    def __str__(self) -> str:
        return self.name

    @property
    def flag(self) -> Any:
        """The waffle flag (None until saved, or when someone deleted it)."""
        from waffle import get_waffle_flag_model

        return get_waffle_flag_model().objects.filter(name=self.flag_name).first() if self.flag_name else None

    def goal_q(self) -> Q:
        """The events that count toward the goal (for dwell, those whose total is compared)."""
        if self.goal_type == self.Goal.CONVERSION:
            return Q(type="conversion", name=self.goal_name)
        if self.goal_type == self.Goal.CLICK:
            return Q(type="click", block_id=self.goal_name)
        if self.goal_type == self.Goal.DWELL:  # the threshold applies to their sum (``with_goal``)
            return Q(type="dwell", block_id=self.goal_name)
        return Q(type="scroll", value__gte=self.goal_threshold or 0)

    def measured_window(self) -> dict[str, Any]:
        """Filter arguments for the events (a subquery over exposures) that count for a visitor:
        received from their first exposure until the experiment's end. Both sides are the
        server's clock (``Event.received_at``; the browser's ``occurred_at`` may be hours off)."""
        window: dict[str, Any] = {"received_at__gte": OuterRef("first_exposed_at")}
        if self.ends_at is not None:
            window["received_at__lt"] = self.ends_at
        return window

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        if self.goal_type in (self.Goal.CONVERSION, self.Goal.CLICK, self.Goal.DWELL) and not self.goal_name:
            errors["goal_name"] = _("Name the conversion or the block this goal is about.")
        if self.goal_type in (self.Goal.DWELL, self.Goal.SCROLL) and not self.goal_threshold:
            errors["goal_threshold"] = _("Say how many seconds (dwell) or percent (scroll).")
        if self.goal_type == self.Goal.SCROLL and (self.goal_threshold or 0) > 100:
            errors["goal_threshold"] = _("A percentage: at most 100.")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = _("The end must come after the start.")
        if self.slug and Experiment.objects.filter(flag_name=flag_name_for(self.slug)).exclude(pk=self.pk).exists():
            errors["slug"] = _("Another experiment uses the waffle flag %(flag)s: choose another slug.") % {
                "flag": flag_name_for(self.slug)}
        # A finished experiment keeps its slice as it was: it enrolls nobody, and the slice it
        # freed may be another's by now (the form fixes group and share once started).
        if self.exclusion_group_id and self.status != self.Status.FINISHED:
            taken = sum(self._group_neighbours().values_list("group_share", flat=True))
            if taken + (self.group_share or 0) > 100:
                errors["group_share"] = _("The group has %(free)s%% of its traffic left.") % {
                    "free": max(0, 100 - taken)}
            elif self._group_slice() is None:
                errors["group_share"] = _("The group's free traffic is split into smaller gaps than "
                                          "%(share)s%%: choose a smaller share.") % {"share": self.group_share}
        if errors:
            raise ValidationError(errors)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.analysis_method = self.analysis_method or "fixed"  # a form posted without it
        self._place_in_group()
        self._link_flag()
        super().save(*args, **kwargs)

    def _link_flag(self) -> None:
        """The experiment's waffle flag is ``microadjust-exp-<slug>``: created (switched off)
        with the experiment, renamed with the slug while a draft (the slug is fixed once it
        starts), or linked when the site already made a flag of that name."""
        from waffle import get_waffle_flag_model

        Flag = get_waffle_flag_model()
        wanted = flag_name_for(self.slug)
        if self.flag_name and self.flag_name != wanted and self.status == self.Status.DRAFT:
            ours = Flag.objects.filter(name=self.flag_name).first()
            if ours is not None and not Flag.objects.filter(name=wanted).exists():
                ours.name = wanted
                ours.save()
            elif ours is not None and FLAG_NOTE_MARK in (ours.note or ""):
                ours.delete()  # ours, and the draft now links the site's flag of the new name
            self.flag_name = ""
        if not self.flag_name:
            self.flag_name = wanted
        Flag.objects.get_or_create(name=self.flag_name, defaults={
            "everyone": False, "note": f"Gates the experiment {self.name!r} {FLAG_NOTE_MARK}."})

    def _place_in_group(self) -> None:
        """The slice this experiment takes in its group (``_group_slice``)."""
        if not self.exclusion_group_id:
            self.group_offset = None
            return
        if self.status == self.Status.FINISHED and self.group_offset is not None:
            return  # it enrolls nobody: its slice never moves (and may be reused by now)
        start = self._group_slice()
        if start is None:  # clean() refuses this; a save without it must not overlap either
            raise ValidationError({"group_share": _("No free slice of the group fits this share.")})
        self.group_offset = round(start, 6)

    def _group_neighbours(self) -> models.QuerySet:
        """The other experiments holding a slice of the group: a finished one enrolls nobody
        again, so its slice is free for the next experiment."""
        return (Experiment.objects.filter(exclusion_group_id=self.exclusion_group_id).exclude(pk=self.pk)
                .exclude(status=self.Status.FINISHED))

    def _group_slice(self) -> float | None:
        """Where the slice starts: where it was while it still fits without overlapping another
        experiment's (a share that grew may no longer), else after the last slice taken, else
        the first gap that fits; None when nothing fits. Slices never overlap, so no visitor is
        in two experiments of one group."""
        others = [((o or 0.0), (o or 0.0) + share / 100) for o, share in
                  self._group_neighbours().values_list("group_offset", "group_share")]
        width = (self.group_share or 0) / 100

        def fits(start: float) -> bool:
            return start + width <= 1.0 + 1e-9 and all(
                end <= start + 1e-9 or start + width <= begin + 1e-9 for begin, end in others)

        previous = (Experiment.objects.filter(pk=self.pk).values_list("exclusion_group_id", flat=True).first()
                    if self.pk else None)
        kept = self.group_offset is not None and previous == self.exclusion_group_id
        candidates = [self.group_offset] if kept else []
        candidates += [max((end for _begin, end in others), default=0.0), _first_gap(sorted(others), width)]
        return next((start for start in candidates if fits(start)), None)

    def is_live(self, now: Any = None) -> bool:
        now = now or timezone.now()
        return (self.status == self.Status.RUNNING and (self.starts_at is None or self.starts_at <= now)
                and (self.ends_at is None or now < self.ends_at))


def _first_gap(taken: list[tuple[float, float]], width: float) -> float:
    cursor = 0.0
    for start, end in taken:
        if start - cursor >= width - 1e-9:
            return cursor
        cursor = max(cursor, end)
    return cursor


class Arm(Orderable):
    """One arm: the control, or a variant whose content PersonalizedBlock variants bind to
    (``{"signal": "experiment_arm", "param": "<slug>", "op": "eq", "value": "<arm name>"}``)."""

    experiment = ParentalKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    name = models.CharField(_("name"), max_length=50,
                            help_text=_("Short, e.g. 'control', 'B'. Conditions use it."))
    weight = models.PositiveIntegerField(_("weight"), default=1,
                                         help_text=_("Relative: 50/30/20 sends half to the first."))
    is_control = models.BooleanField(_("control"), default=False)

    class Meta(Orderable.Meta):
        verbose_name = _("arm")
        verbose_name_plural = _("arms")
        constraints = [models.UniqueConstraint(fields=["experiment", "name"], name="ma_arm_unique_name")]

    def __str__(self) -> str:
        return f"{self.experiment}: {self.name}"


class Exposure(models.Model):
    """A block bound to the experiment rendered for an enrolled visitor (not merely were they
    assigned; ``recording`` says why whichever variant showed): one row per visitor and
    experiment, the first time. Written after the response is built (``recording``)."""

    visitor_id = models.CharField(max_length=40)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="exposures")
    #: RESTRICT, not CASCADE: an arm with exposures cannot be deleted on its own (its data would
    #: vanish from the report); deleting the whole experiment still deletes both.
    arm = models.ForeignKey(Arm, on_delete=models.RESTRICT, related_name="exposures")
    first_exposed_at = models.DateTimeField(default=timezone.now)

    objects = ExposureQuerySet.as_manager()

    class Meta:
        verbose_name = _("exposure")
        constraints = [models.UniqueConstraint(fields=["experiment", "visitor_id"],
                                               name="ma_exposure_once")]
        indexes = [models.Index(fields=["experiment", "arm", "first_exposed_at"],
                                name="ma_exposure_arm_time")]

    def __str__(self) -> str:
        return f"{self.visitor_id} saw {self.arm.name} of {self.experiment}"
