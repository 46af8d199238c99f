"""The signals rule and cluster segments contribute: ``segment`` and ``cluster``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy as _

from ..signals.registry import Signal, SignalRegistry
from .clusters import CLUSTER_SIGNALS
from .membership import SegmentMembership, membership, segment_choices

if TYPE_CHECKING:
    from ..visitor.context import VisitorContext


def _segment(v: VisitorContext, _p: str | None) -> SegmentMembership:
    return membership(v)


SEGMENT = Signal("segment", "set", _segment, _("Segment"), choices=segment_choices,
                 help_text=_("Rule segments and cluster segments the visitor is in."))


def register(registry: SignalRegistry) -> None:
    for signal in (SEGMENT, *CLUSTER_SIGNALS):
        registry.register(signal, replace=True)
