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

from ..signals.registry import Signal, SignalRegistry
from .runtime import visitor_assignment

if TYPE_CHECKING:
    from ..visitor.context import VisitorContext


def _experiment_arm(visitor: VisitorContext, slug: str | None) -> str:
    if not slug:
        return ""
    assignment = visitor_assignment(visitor, slug)
    return assignment.arm if assignment is not None else ""


def experiment_choices() -> list[tuple[str, str]]:
    """Every experiment, finished ones too: a page bound to one must stay savable (its arms
    simply no longer show)."""
    from .models import Experiment

    return [(slug, name if status != Experiment.Status.FINISHED else f"{name} (finished)")
            for slug, name, status in Experiment.objects.values_list("slug", "name", "status")]


def arm_choices() -> list[tuple[str, str]]:
    """Every arm name (for a rule that names no experiment yet)."""
    from .models import Arm

    names = sorted(set(Arm.objects.values_list("name", flat=True)))
    return [(name, name) for name in names]


def arms_by_experiment() -> dict[str, list[tuple[str, str]]]:
    """slug → that experiment's arms, in the editor's order, the control marked."""
    from .models import Arm

    arms: dict[str, list[tuple[str, str]]] = {}
    for slug, name, control in (Arm.objects.order_by("experiment__slug", "sort_order", "pk")
                                .values_list("experiment__slug", "name", "is_control")):
        arms.setdefault(slug, []).append((name, f"{name} (control)" if control else name))
    return arms


EXPERIMENT_ARM = Signal(
    "experiment_arm", "string", _experiment_arm, _("Experiment arm"),
    param_label=_("Experiment (slug)"), param_choices=experiment_choices, choices=arm_choices,
    choices_by_param=arms_by_experiment,
    operators=("eq", "in"),
    help_text=_("The visitor's arm in a running experiment; empty when not enrolled. Bind a "
                "variant to an arm with 'equals'; the control is usually the default."))


def register(registry: SignalRegistry) -> None:
    registry.register(EXPERIMENT_ARM, replace=True)
