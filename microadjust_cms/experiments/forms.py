"""The experiment snippet's form: the arms checked together, the waffle flag's percent, and
what stays fixed once the experiment has started.

Once started, the slug (conditions name it), the arms (exposures point at them; a rename breaks
the bindings, a new weight or order moves visitors between arms), the exclusion group and share
(they move visitors between experiments) and the priority (it decides which experiment owns a
shared block) are fixed for everyone. What stops or resumes enrolment needs
the permission of the report's button that does the same: the traffic share and the start need
"pause", the end needs "finish". Fixed fields are disabled, so a forged post cannot change them
either (Django keeps a disabled field's initial value)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm


def arm_errors(arms: list[dict[str, Any]]) -> list[str]:
    """What is wrong with a set of arms (each a dict with name, weight, is_control)."""
    errors = []
    if len(arms) < 2:
        errors.append(_("An experiment needs at least two arms: a control and a variant."))
    controls = sum(1 for arm in arms if arm.get("is_control"))
    if controls != 1:
        errors.append(_("Exactly one arm must be the control (%(n)s are).") % {"n": controls})
    names = [arm.get("name") for arm in arms]
    duplicates = sorted({n for n in names if n and names.count(n) > 1})
    if duplicates:
        errors.append(_("Arm names must be unique: %(names)s.") % {"names": ", ".join(duplicates)})
    if any((arm.get("weight") or 0) <= 0 for arm in arms):
        errors.append(_("Every arm's weight must be a positive number."))
    return errors


def set_traffic(flag: Any, percent: Decimal, running: bool) -> None:
    """The share enrolled, on the experiment's waffle flag. Waffle's percent holds at most 99.9:
    all the traffic is no percent, and ``everyone`` on while running. Until the experiment runs
    (a draft), while paused, and when someone switched the flag off in waffle's admin,
    ``everyone`` stays off, so ``{% flag %}`` is off too; *Start* and *Resume* switch it on."""
    flag.percent = None if percent >= 100 else percent
    if not running or flag.everyone is False:
        flag.everyone = False
    else:
        flag.everyone = True if percent >= 100 else None
    flag.save()


#: Fields fixed once the experiment has started, and the fields each permission unlocks.
FIXED_ONCE_STARTED = ("slug", "exclusion_group", "group_share", "priority")
NEEDS_PERMISSION = {"traffic_percent": "microadjust_cms.pause_experiment",
                    "starts_at": "microadjust_cms.pause_experiment",
                    "ends_at": "microadjust_cms.finish_experiment"}
#: An arm's ORDER too: the arms' order lays out their hash ranges (``runtime.load_state``).
ARM_FIELDS = ("name", "weight", "is_control", "ORDER")


class ExperimentForm(WagtailAdminModelForm):
    traffic_percent = forms.DecimalField(
        label=_("Traffic enrolled (%)"), min_value=Decimal(0), max_value=Decimal(100),
        max_digits=4, decimal_places=1, initial=Decimal(100),
        help_text=_("The share of visitors enrolled (decided by hashing, stable per visitor): the "
                    "waffle flag's percent, or its 'everyone' for 100. 0 gives everybody the "
                    "control. A flag switched off for everyone stays off."))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        flag = self.instance.flag if self.instance.pk else None
        if flag is not None:
            # No percent means all the traffic (waffle's percent stops at 99.9), also while a
            # pause holds ``everyone`` off: showing 0 there would save 0 and resume to nobody.
            self.fields["traffic_percent"].initial = (
                Decimal(100) if flag.everyone or flag.percent is None else flag.percent)
        self.started = bool(self.instance.pk) and self.instance.status != "draft"
        if self.started:
            self._fix_started_fields()

    def _fix_started_fields(self) -> None:
        finished = self.instance.status == "finished"
        user = self.for_user
        for name in FIXED_ONCE_STARTED:
            self._fix(name, _("Fixed once the experiment has started."))
        for name, permission in NEEDS_PERMISSION.items():
            if finished:
                self._fix(name, _("Fixed once the experiment has finished: the report reads up to its end."))
            elif user is None or not user.has_perm(permission):
                self._fix(name, _("Only someone who may %(action)s the experiment can change this while "
                                  "it runs.") % {"action": _("pause") if "pause" in permission else _("finish")})
        formset = self.formsets.get("arms")
        for form in formset.forms if formset is not None else ():
            if form.instance.pk:
                for name in ARM_FIELDS:
                    if name in form.fields:
                        form.fields[name].disabled = True

    def _fix(self, name: str, why: Any) -> None:
        field = self.fields.get(name)
        if field is not None:
            field.disabled = True
            field.help_text = f"{field.help_text} {why}".strip() if field.help_text else why

    def live_arms(self) -> list[dict[str, Any]]:
        formset = self.formsets.get("arms")
        if formset is None:
            return []
        return [f.cleaned_data for f in formset.forms
                if getattr(f, "cleaned_data", None) and not f.cleaned_data.get("DELETE")]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name, field in self.fields.items():
            if field.disabled and name in cleaned and hasattr(self.instance, name):
                # The stored value itself: a disabled field's initial drops microseconds.
                cleaned[name] = getattr(self.instance, name)
        formset = self.formsets.get("arms")
        if formset is not None and self.started and self._arms_added_or_removed(formset):
            self.add_error(None, _("The arms of a started experiment cannot change: its exposures and "
                                   "the variants bound to them depend on them. Finish it and create a "
                                   "new experiment to test other arms."))
        elif formset is not None and all(f.is_valid() for f in formset.forms):
            for message in arm_errors(self.live_arms()):
                self.add_error(None, message)
        return cleaned

    @staticmethod
    def _arms_added_or_removed(formset: Any) -> bool:
        for form in formset.forms:
            if not form.instance.pk and form.has_changed():
                return True  # a new arm (an empty extra form is not one)
            if form.instance.pk and form.is_valid() and form.cleaned_data.get("DELETE"):
                return True
        return False

    def save(self, commit: bool = True) -> Any:
        instance = super().save(commit=commit)
        percent = None if self.fields["traffic_percent"].disabled else self.cleaned_data.get("traffic_percent")
        flag = instance.flag if commit else None
        if flag is not None and percent is not None:
            set_traffic(flag, percent, running=instance.status == instance.Status.RUNNING)
        return instance
