"""The audit trail of experiments, in Wagtail's own log (ModelLogEntry), so the snippet's
History tab and Reports → Site history show who did what.

Wagtail logs ``wagtail.create`` and ``wagtail.edit`` for snippets, but an edit entry does not
say what changed. The experiment's edit view logs ``microadjust_cms.experiment.edit`` instead,
with the changed fields (old and new values, arms included) in the entry's data; the report's
buttons log start / pause / resume / finish (``lifecycle``).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from wagtail.log_actions import LogFormatter
from wagtail.snippets.views.snippets import CopyView, EditView

from ..experiments.models import Experiment

#: Fields whose changes are logged (the salt, flag name and timestamps are not editor input).
AUDITED_FIELDS = ("name", "slug", "hypothesis", "status", "starts_at", "ends_at", "goal_type", "goal_name",
                  "goal_threshold", "exclusion_group", "group_share", "priority", "analysis_method")
EDIT_ACTION = "microadjust_cms.experiment.edit"


def snapshot(experiment: Experiment) -> dict[str, str]:
    """What an editor can change, as strings (comparable and JSON-serialisable)."""
    values = {}
    for name in AUDITED_FIELDS:
        value = getattr(experiment, name)
        values[name] = "" if value is None else str(value)
    flag = experiment.flag if experiment.pk else None
    if flag is not None:
        values["traffic"] = "100" if flag.everyone else "0" if flag.everyone is False else str(flag.percent or 0)
    if experiment.pk:
        values["arms"] = "; ".join(
            f"{arm.name}={arm.weight}{' (control)' if arm.is_control else ''}"
            for arm in experiment.arms.order_by("sort_order", "pk"))
    return values


def diff(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str]]:
    """field → [old, new] for every field that changed."""
    return {key: [before.get(key, ""), after.get(key, "")] for key in sorted(set(before) | set(after))
            if before.get(key, "") != after.get(key, "")}


class ExperimentCopyView(CopyView):
    """Wagtail's copy, as a new draft: the form is built on the original (its page posts to
    *add*), so the original is shown as a draft with no schedule, and nothing on the form is
    locked as it is on a started experiment (``forms.ExperimentForm``). Never saved."""

    def get_initial_form_instance(self) -> Experiment:
        experiment = super().get_initial_form_instance()
        experiment.status = Experiment.Status.DRAFT
        experiment.starts_at = experiment.ends_at = None
        return experiment


class ExperimentEditView(EditView):
    """The snippet edit view, logging the field diff instead of a bare "Edited"."""

    def get_object(self, queryset: Any = None) -> Experiment:
        experiment = super().get_object(queryset)
        if not hasattr(self, "_before"):
            self._before = snapshot(experiment)
        return experiment

    def save_instance(self) -> Experiment:
        from wagtail.log_actions import log

        # Wagtail's own save (and its plain "Edited" entry), the same on Wagtail 7.4 and 8,
        # then the diff as an entry of its own.
        instance = Experiment.objects.get(pk=super().save_instance().pk)
        changes = diff(getattr(self, "_before", {}), snapshot(instance))
        log(instance, EDIT_ACTION, user=self.request.user, data={"changes": changes},
            content_changed=bool(changes))
        return instance


class EditFormatter(LogFormatter):
    label = _("Edit experiment")

    def format_message(self, log_entry: Any) -> str:
        changes = (log_entry.data or {}).get("changes") or {}
        if not changes:
            return str(_("Saved without changes"))
        parts = [f"{name}: {old or '∅'} → {new or '∅'}" for name, (old, new) in changes.items()]
        return str(_("Edited: %(changes)s")) % {"changes": "; ".join(parts)}


class TransitionFormatter(LogFormatter):
    """Start, pause, resume, finish: the status change is in the entry's data."""

    def format_message(self, log_entry: Any) -> str:
        data = log_entry.data or {}
        if data.get("from") and data.get("to"):
            return f"{self.message} ({data['from']} → {data['to']})"
        return str(self.message)


TRANSITIONS = [("start", _("Start experiment"), _("Started")), ("pause", _("Pause experiment"), _("Paused")),
               ("resume", _("Resume experiment"), _("Resumed")), ("finish", _("Finish experiment"), _("Finished"))]


def register_actions(actions: Any) -> None:
    """For the ``register_log_actions`` hook."""
    actions.register_action(EDIT_ACTION)(EditFormatter)
    for name, label, message in TRANSITIONS:
        formatter = type(f"{name.title()}Formatter", (TransitionFormatter,), {"label": label, "message": message})
        actions.register_action(f"microadjust_cms.experiment.{name}")(formatter)
