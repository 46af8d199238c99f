"""The experiment snippet's form: the arms checked together, and the waffle flag's percent."""

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


def set_traffic(flag: Any, percent: Decimal) -> None:
    """Waffle's percent holds at most 99.9: all the traffic is its ``everyone`` switched on."""
    if percent >= 100:
        flag.everyone, flag.percent = (True if flag.everyone is not False else False), None
    else:
        flag.everyone = None if flag.everyone else flag.everyone
        flag.percent = percent
    flag.save()


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

    def live_arms(self) -> list[dict[str, Any]]:
        formset = self.formsets.get("arms")
        if formset is None:
            return []
        return [f.cleaned_data for f in formset.forms
                if getattr(f, "cleaned_data", None) and not f.cleaned_data.get("DELETE")]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        formset = self.formsets.get("arms")
        if formset is not None and all(f.is_valid() for f in formset.forms):
            for message in arm_errors(self.live_arms()):
                self.add_error(None, message)
        return cleaned

    def save(self, commit: bool = True) -> Any:
        instance = super().save(commit=commit)
        percent = self.cleaned_data.get("traffic_percent")
        flag = instance.flag if commit else None
        if flag is not None and percent is not None:
            set_traffic(flag, percent)
        return instance
