"""Admin-only views (a leaf: nothing on the request path imports this module)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from ..conditions import OPERATOR_LABELS
from ..signals.registry import registry


def signal_catalogue(request: HttpRequest) -> JsonResponse:
    """What the condition editor offers: signals with types, operators and choices."""
    response = JsonResponse({"signals": registry.describe(), "operators": OPERATOR_LABELS})
    response["Cache-Control"] = "private, no-store"
    return response
