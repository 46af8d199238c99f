"""Start, pause, resume and finish an experiment: the valid transitions, the permission each
needs, the waffle flag, and a Wagtail log entry (so the history shows who did it).

Plain functions: the report page's buttons call ``transition``; so can a shell or a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.log_actions import log

from .models import Experiment

S = Experiment.Status


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    permission: str
    sources: tuple[str, ...]
    target: str
    log_action: str


ACTIONS: dict[str, Action] = {a.name: a for a in [
    Action("start", _("Start"), "microadjust_cms.start_experiment", (S.DRAFT,), S.RUNNING,
           "microadjust_cms.experiment.start"),
    Action("pause", _("Pause"), "microadjust_cms.pause_experiment", (S.RUNNING,), S.PAUSED,
           "microadjust_cms.experiment.pause"),
    Action("resume", _("Resume"), "microadjust_cms.pause_experiment", (S.PAUSED,), S.RUNNING,
           "microadjust_cms.experiment.resume"),
    Action("finish", _("Finish"), "microadjust_cms.finish_experiment", (S.RUNNING, S.PAUSED), S.FINISHED,
           "microadjust_cms.experiment.finish"),
]}


class TransitionError(ValueError):
    """The experiment's status does not allow the action; the message says why, for the editor."""


def available_actions(experiment: Experiment, user: Any) -> list[Action]:
    """The buttons to show: valid from the current status and permitted to ``user``."""
    return [a for a in ACTIONS.values() if experiment.status in a.sources and user.has_perm(a.permission)]


def _switch_flag(experiment: Experiment, on: bool) -> None:
    """On: waffle's ``everyone`` back to "decide by percent" (or everyone, when no percent was ever
    set); off: nobody is enrolled and ``{% flag %}`` is off too."""
    flag = experiment.flag
    if flag is None:
        return
    if on:
        flag.everyone = True if flag.percent is None else None
    else:
        flag.everyone = False
    flag.save()


@transaction.atomic
def transition(experiment: Experiment, action_name: str, user: Any) -> Experiment:
    """Apply ``action_name``; raises ``TransitionError`` for an invalid one (permission is the
    caller's to check: the view answers 403)."""
    action = ACTIONS.get(action_name)
    if action is None:
        raise TransitionError(_("Unknown action %(action)r.") % {"action": action_name})
    experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if experiment.status not in action.sources:
        raise TransitionError(_("Cannot %(action)s an experiment that is %(status)s.") % {
            "action": str(action.label).lower(), "status": experiment.get_status_display().lower()})
    if action.name == "start" and experiment.arms.filter(is_control=True).count() != 1:
        raise TransitionError(_("Cannot start: the experiment needs exactly one control arm."))
    now = timezone.now()
    previous = experiment.status
    experiment.status = action.target
    if action.name == "start" and experiment.starts_at is None:  # a start set in the future stays
        experiment.starts_at = now
    if action.name == "finish":
        experiment.ends_at = now if experiment.ends_at is None or experiment.ends_at > now else experiment.ends_at
    experiment.save()
    _switch_flag(experiment, on=action.target == S.RUNNING)
    log(experiment, action.log_action, user=user,
        data={"from": previous, "to": experiment.status,
              "at": now.isoformat(), "flag": experiment.flag_name})
    return experiment
