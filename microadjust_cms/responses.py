"""The JSON refusal every public endpoint (collect, fragment API) answers bad input with."""

from __future__ import annotations

from django.http import JsonResponse


def problem(status: int, error: str, detail: str | list[str]) -> JsonResponse:
    """A stable ``error`` code and one line per thing that was wrong; never cached."""
    details = detail if isinstance(detail, list) else [detail]
    response = JsonResponse({"error": error, "detail": details}, status=status)
    response["Cache-Control"] = "no-store"
    return response


def unavailable(what: str, retry_after: int = 30) -> JsonResponse:
    """503 with Retry-After: the tracker keeps a refused batch, and a trigger its variant, and
    tries again later."""
    response = problem(503, "unavailable", f"{what}; retry later")
    response["Retry-After"] = str(retry_after)
    return response
