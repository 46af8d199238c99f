"""The JSON refusal every public endpoint (collect, fragment API) answers bad input with."""

from __future__ import annotations

from django.http import JsonResponse


def problem(status: int, error: str, detail: str | list[str]) -> JsonResponse:
    """A stable ``error`` code and one line per thing that was wrong; never cached."""
    details = detail if isinstance(detail, list) else [detail]
    response = JsonResponse({"error": error, "detail": details}, status=status)
    response["Cache-Control"] = "no-store"
    return response
