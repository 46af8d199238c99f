"""The ``predicted_engagement`` signal: how likely this visitor engages with a content type.

``{"signal": "predicted_engagement", "param": "video", "op": "gte", "value": 40}`` holds when
the active engagement model gives at least a 40 % chance that this visitor clicks, or dwells
on, a block of content type "video" shown first on the page (position 0, no tags). With no
usable model (none, stale, thin) or no profile, the signal fails, so the rule is false (logged).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy as _

from ..signals.registry import Signal, SignalRegistry

if TYPE_CHECKING:
    from ..visitor.context import VisitorContext


class NoEngagementModel(LookupError):
    """No model may score now; the rule asking is false."""


def _predicted_engagement(visitor: VisitorContext, content_type: str | None) -> float:
    from .scoring import Item, usable_model, visitor_vector

    model, reason = usable_model()
    if model is None:
        raise NoEngagementModel(f"no engagement model to ask ({reason})")
    vector = visitor_vector(visitor, model)
    probability = model.predict(model.matrix(vector, [Item(content_type or "", (), 0)]))[0]
    return round(float(probability) * 100.0, 1)


def known_content_types() -> list[tuple[str, str]] | None:
    """The content types the active model knows; None (any content type) while no model is
    active or it knows none: a refused training run (too little data) must not lock editors out
    of rules an older active model answers, nor of rules for models still to come."""
    from .models import EngagementModel

    layout = (EngagementModel.objects.filter(active=True).exclude(layout={}).order_by("-version")
              .values_list("layout", flat=True).first())
    types = (layout or {}).get("content_types") or ()
    return [(t, t) for t in types] or None


PREDICTED_ENGAGEMENT = Signal(
    "predicted_engagement", "number", _predicted_engagement, _("Predicted engagement"),
    needs_profile=True, param_label=_("Content type"), param_choices=known_content_types,
    help_text=_("0-100: the engagement model's chance that this visitor clicks or dwells on a "
                "block of this content type at the top of the page. False while no model is "
                "active."))


def register(registry: SignalRegistry) -> None:
    registry.register(PREDICTED_ENGAGEMENT, replace=True)
