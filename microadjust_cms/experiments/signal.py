"""The ``experiment_arm`` signal: binds a PersonalizedBlock variant to an experiment's arm.

``{"signal": "experiment_arm", "param": "hero-test", "op": "eq", "value": "B"}`` holds for
visitors assigned to arm B of the running experiment ``hero-test``. The value is "" when the
visitor is not enrolled (flag off, outside the traffic share or the group's slice, holdout, no
visitor id) or the experiment is not running: they see what no arm-bound variant shows, which is
the block's default (the control, usually).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy as _

from ..signal_registry import Signal
from .runtime import visitor_assignment

if TYPE_CHECKING:
    from ..context import VisitorContext


def _experiment_arm(visitor: VisitorContext, slug: str | None) -> str:
    if not slug:
        return ""
    assignment = visitor_assignment(visitor, slug)
    return assignment.arm if assignment is not None else ""


def experiment_choices() -> list[tuple[str, str]]:
    from .models import Experiment

    return list(Experiment.objects.exclude(status=Experiment.Status.FINISHED).values_list("slug", "name"))


def arm_choices() -> list[tuple[str, str]]:
    from .models import Arm

    names = sorted(set(Arm.objects.values_list("name", flat=True)))
    return [(name, name) for name in names]


EXPERIMENT_ARM = Signal(
    "experiment_arm", "string", _experiment_arm, _("Experiment arm"),
    param_label=_("Experiment (slug)"), param_choices=experiment_choices, choices=arm_choices,
    operators=("eq", "in"),
    help_text=_("The visitor's arm in a running experiment; empty when not enrolled. Bind a "
                "variant to an arm with 'equals'; the control is usually the default."))
