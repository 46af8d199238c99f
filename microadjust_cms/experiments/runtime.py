"""Who is in which arm, at render time, with no SQL in the steady state.

The running experiments, their arms, exclusion groups and waffle flags are read once per process
(``experiment_cache``, a ``ProcessCopy``) and re-read after any of them changes. For one visitor
and one experiment, ``assign`` decides in this order:

1. The experiment is not running now (status, start, end): not enrolled.
2. Waffle's per-request rules, in waffle's own order, mirrored from the copied flag: the
   ``WAFFLE_OVERRIDE`` query parameter, ``everyone`` (False: nobody; True: all the traffic, so
   step 4 onwards with coverage 1), testing mode (``dwft_<flag>`` parameter, header or cookie),
   languages, then the user rules (superusers, staff, authenticated, users, groups). When one of
   these turns the flag on, the visitor is enrolled for QA: arm by hash, group ignored, and no
   exposure is recorded (``Assignment.qa``); when one turns it off, not enrolled. In the global
   holdout only testers are (override, testing mode, superusers, listed users), not audiences.
3. No visitor id (Do Not Track, no consent): not enrolled.
4. The global holdout (``in_holdout``): not enrolled.
5. The exclusion group: enrolled only when the visitor's place in the group (hash with the
   group's salt) falls in this experiment's slice.
6. The flag's ``percent`` is the coverage: ``hash_unit(salt, visitor id)`` falls in one arm's
   range (``bucket_ranges(weights, percent / 100)``) or in none (not enrolled). Waffle's own
   random draw and cookie are never used, so a visitor's arm is stable everywhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.core.signals import setting_changed
from waffle.utils import get_setting as _read_waffle_setting

from ..conf import get_setting
from ..process_copies import ProcessCopy
from .assignment import bucket_ranges, choose_arm, seed_state, unit_from_state

GENERATION_KEY = "microadjust:experiments:generation"


@dataclass(frozen=True)
class FlagRules:
    """What waffle's ``Flag.is_active`` reads, copied so the render path runs no SQL."""

    name: str
    everyone: bool | None = None
    percent: float = 0.0
    testing: bool = False
    superusers: bool = False
    staff: bool = False
    authenticated: bool = False
    languages: tuple[str, ...] = ()
    user_ids: frozenset = frozenset()
    group_ids: frozenset = frozenset()


@dataclass(frozen=True)
class ArmState:
    id: int
    name: str
    is_control: bool


@dataclass(frozen=True)
class ExperimentState:
    id: int
    slug: str
    priority: int
    seed: int  # FNV-1a state after the salt
    arms: tuple[ArmState, ...]
    ranges: tuple[tuple[float, float], ...]  # with the flag's percent as coverage
    full_ranges: tuple[tuple[float, float], ...]  # coverage 1: everyone=True and QA
    flag: FlagRules
    starts_at: float | None = None
    ends_at: float | None = None
    #: (group seed, slice start, slice end) when in an exclusion group.
    group: tuple[int, float, float] | None = None

    def live(self, now: float) -> bool:
        return (self.starts_at is None or self.starts_at <= now) and (self.ends_at is None or now < self.ends_at)


@dataclass(frozen=True)
class ExperimentsState:
    by_slug: dict[str, ExperimentState] = field(default_factory=dict)


@dataclass(frozen=True)
class Assignment:
    """The visitor's arm in one experiment. ``qa``: enrolled by a waffle rule, not by hashing
    (its renders are not exposures)."""

    experiment_id: int
    arm_id: int
    arm: str
    priority: int
    qa: bool = False


def _flag_rules(flag: Any) -> FlagRules:
    if flag is None:
        return FlagRules(name="", everyone=False)
    languages = tuple(x.strip() for x in (flag.languages or "").split(",") if x.strip())
    return FlagRules(
        name=flag.name, everyone=flag.everyone, percent=float(flag.percent or 0), testing=flag.testing,
        superusers=flag.superusers, staff=flag.staff, authenticated=flag.authenticated, languages=languages,
        user_ids=frozenset(user.pk for user in flag.users.all()),
        group_ids=frozenset(group.pk for group in flag.groups.all()))


def arm_order(arms: Any) -> list[Any]:
    """The arms in the order their hash ranges are laid out: the editor's order, then creation
    (an arm saved without a sort order, e.g. from a shell, still has a fixed place)."""
    return sorted(arms, key=lambda arm: (arm.sort_order is None, arm.sort_order or 0, arm.pk))


def load_state() -> ExperimentsState:
    from waffle import get_waffle_flag_model

    from .models import Experiment

    experiments = list(Experiment.objects.filter(status=Experiment.Status.RUNNING)
                       .select_related("exclusion_group").prefetch_related("arms"))
    flags = {flag.name: flag for flag in get_waffle_flag_model().objects.filter(
        name__in=[e.flag_name for e in experiments]).prefetch_related("users", "groups")}
    by_slug = {}
    for experiment in experiments:
        arms = [arm for arm in arm_order(experiment.arms.all()) if arm.weight > 0]
        if len(arms) < 2:
            continue
        rules = _flag_rules(flags.get(experiment.flag_name))
        weights = [arm.weight for arm in arms]
        group = None
        if experiment.exclusion_group is not None and experiment.group_offset is not None:
            start = experiment.group_offset
            group = (seed_state(experiment.exclusion_group.salt), start, start + experiment.group_share / 100)
        by_slug[experiment.slug] = ExperimentState(
            id=experiment.pk, slug=experiment.slug, priority=experiment.priority, seed=seed_state(experiment.salt),
            arms=tuple(ArmState(arm.pk, arm.name, arm.is_control) for arm in arms),
            ranges=tuple(bucket_ranges(weights, rules.percent / 100)),
            full_ranges=tuple(bucket_ranges(weights, 1.0)), flag=rules,
            starts_at=experiment.starts_at.timestamp() if experiment.starts_at else None,
            ends_at=experiment.ends_at.timestamp() if experiment.ends_at else None, group=group)
    return ExperimentsState(by_slug)


#: The running experiments; ``invalidate()`` after an experiment, arm, group or flag changes.
experiment_cache: ProcessCopy[ExperimentsState] = ProcessCopy(
    "experiment", GENERATION_KEY, load_state, "SEGMENT_REFRESH_SECONDS")


_holdout_seeds: dict[str, int] = {}


def _holdout_seed() -> int:
    salt = get_setting("EXPERIMENT_HOLDOUT_SALT")
    seed = _holdout_seeds.get(salt)
    if seed is None:
        seed = _holdout_seeds[salt] = seed_state(salt)
    return seed


def in_holdout(visitor_id: str | None) -> bool:
    """The visitor is in the global holdout: default content everywhere, no experiment. Hashed
    with its own salt (``EXPERIMENT_HOLDOUT_SALT``), so it is independent of every experiment."""
    share = get_setting("EXPERIMENT_HOLDOUT")
    if not share or not visitor_id:
        return False
    return unit_from_state(_holdout_seed(), visitor_id) < share


def visitor_in_holdout(visitor: Any) -> bool:
    """``in_holdout`` for the request's visitor, once a request. Only ``assign`` reads this (a
    QA tester in the holdout is enrolled for QA, never by hash); rendering reads ``held_out``."""
    memo = visitor.memo
    found = memo.get("__in_holdout")
    if found is None:
        found = memo["__in_holdout"] = in_holdout(visitor.visitor_id)
    return found


def held_out(visitor: Any) -> bool:
    """The holdout rule ``apps.ready`` installs (``VisitorContext.held_out``): in the global
    holdout and not a QA tester this request."""
    return visitor_in_holdout(visitor) and not qa_request(visitor)


_waffle_settings: dict[str, Any] = {}


def waffle_setting(name: str) -> Any:
    """Waffle's setting, read once (waffle's own reader raises and catches for every default)."""
    try:
        return _waffle_settings[name]
    except KeyError:
        value = _waffle_settings[name] = _read_waffle_setting(name)
        return value


def _forget_waffle_settings(**_kwargs: Any) -> None:
    _waffle_settings.clear()


setting_changed.connect(_forget_waffle_settings, dispatch_uid="microadjust-waffle-settings")


def waffle_rule(request: Any, rules: FlagRules, testers_only: bool = False) -> bool | None:
    """Waffle's answer for this request from any rule but the percent (see the module doc):
    True or False when a rule decides, None when only the percent (our hash) is left.
    ``testers_only``: only the rules that name testers (override, testing mode, superusers,
    listed users), not audiences (languages, staff, authenticated, groups)."""
    if waffle_setting("OVERRIDE"):
        values = dict.get(request.GET, rules.name)
        if values:
            return values[-1] == "1"
    if rules.everyone is not None:
        return rules.everyone
    if rules.testing:
        cookie = waffle_setting("TEST_COOKIE") % rules.name
        values = dict.get(request.GET, cookie)
        header = cookie.replace("_", "-")
        on = values[-1] == "1" if values else request.headers[header] == "1" if header in request.headers else None
        if on is not None:
            # As waffle does: its middleware then keeps the choice in the dwft_ cookie, so the
            # tester's next pages are QA too (not counted visitors).
            if not hasattr(request, "waffle_tests"):
                request.waffle_tests = {}
            request.waffle_tests[rules.name] = on
            return on
        if cookie in request.COOKIES:
            return request.COOKIES[cookie] == "True"
    user = getattr(request, "user", None)
    if testers_only:
        authenticated = user is not None and user.is_authenticated
        return True if authenticated and ((rules.superusers and user.is_superuser)
                                          or user.pk in rules.user_ids) else None
    if rules.languages and getattr(request, "LANGUAGE_CODE", None) in rules.languages:
        return True
    if user is not None and user.is_authenticated:
        if (rules.authenticated or (rules.staff and user.is_staff) or (rules.superusers and user.is_superuser)
                or user.pk in rules.user_ids):
            return True
        if rules.group_ids and rules.group_ids.intersection(_group_ids(request, user)):
            return True
    return None


def _group_ids(request: Any, user: Any) -> frozenset[int]:
    """The user's groups, read once a request however many flags have group rules (only a
    logged-in visitor of a page whose experiment's flag names groups pays this one query)."""
    ids = getattr(request, "_microadjust_group_ids", None)
    if ids is None:
        ids = request._microadjust_group_ids = frozenset(user.groups.values_list("pk", flat=True))
    return ids


def assign(visitor: Any, slug: str) -> Assignment | None:
    """The visitor's arm in the experiment ``slug``, or None (see the module doc)."""
    experiment = experiment_cache.get().by_slug.get(slug)
    if experiment is None or not experiment.live(time.time()):
        return None
    request = visitor.request
    rule = waffle_rule(request, experiment.flag)
    if rule is False:
        return None
    visitor_id = visitor.visitor_id
    if rule is True and experiment.flag.everyone is not True:  # a QA rule
        # In the holdout, only testers are enrolled (``qa_request``): an audience rule (staff,
        # groups, ...) must not take a share of the holdout out of it.
        if visitor_in_holdout(visitor) and waffle_rule(request, experiment.flag, testers_only=True) is not True:
            return None
        index = choose_arm(unit_from_state(experiment.seed, visitor_id or ""), experiment.full_ranges)
        arm = experiment.arms[index]
        return Assignment(experiment.id, arm.id, arm.name, experiment.priority, qa=True)
    if visitor_id is None or visitor_in_holdout(visitor):
        return None
    group = experiment.group
    if group is not None and not group[1] <= unit_from_state(group[0], visitor_id) < group[2]:
        return None
    ranges = experiment.full_ranges if rule is True else experiment.ranges
    index = choose_arm(unit_from_state(experiment.seed, visitor_id), ranges)
    if index < 0:
        return None
    arm = experiment.arms[index]
    return Assignment(experiment.id, arm.id, arm.name, experiment.priority)


def qa_request(visitor: Any) -> bool:
    """A tester's request (waffle's override or testing mode, or a superuser or listed user of
    the flag) enrolled for QA in some live experiment: the holdout does not apply to it. Asked
    once a request, only for a visitor in the holdout (``held_out``). Audience rules do not
    count, or they would take whole audiences out of the holdout and bias the overall lift."""
    now, request = time.time(), visitor.request
    return any(e.flag.everyone is not True and e.live(now)
               and waffle_rule(request, e.flag, testers_only=True) is True
               for e in experiment_cache.get().by_slug.values())


def visitor_assignment(visitor: Any, slug: str) -> Assignment | None:
    """``assign`` memoized on the visitor for the request."""
    memo = visitor.memo
    key = ("__assignment", slug)
    if key in memo:
        return memo[key]
    value = memo[key] = assign(visitor, slug)
    return value


# -- Re-read when experiments or their flags change ---------------------------------------------

def _experiments_changed(**_kwargs: object) -> None:
    """Every process re-reads the running experiments (once the change is committed)."""
    from django.db import transaction

    experiment_cache.forget()
    transaction.on_commit(experiment_cache.invalidate)


def connect_signals() -> None:
    """Called from the app's ``ready`` (waffle's flag model is swappable: known only then)."""
    from django.core.exceptions import ImproperlyConfigured
    from django.db.models.signals import m2m_changed, post_delete, post_save
    from waffle import get_waffle_flag_model

    from .models import Arm, ExclusionGroup, Experiment

    try:
        flags: tuple = (get_waffle_flag_model(),)
    except ImproperlyConfigured:
        # "waffle" (or the app of a swapped flag model) is not installed. Raising here would
        # crash every manage.py command with a traceback; the system check (checks.py, E009 /
        # E010) names what is missing instead.
        flags = ()
    for model in (Experiment, Arm, ExclusionGroup, *flags):
        post_save.connect(_experiments_changed, sender=model, dispatch_uid=f"ma-exp-{model.__name__}-save")
        post_delete.connect(_experiments_changed, sender=model, dispatch_uid=f"ma-exp-{model.__name__}-del")
    for flag_model in flags:
        for through in (flag_model.users.through, flag_model.groups.through):
            m2m_changed.connect(_experiments_changed, sender=through, dispatch_uid=f"ma-exp-{through.__name__}")

