"""The JSON refusal every public endpoint (collect, fragment API) answers bad input with."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse

from .faults import record


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


def unavailable_without_database(what: str, log: logging.Logger) -> Callable:
    """A view that answers 503 with Retry-After (and counts the outage, logged once an interval)
    when the database does not answer, instead of 500: ``what`` says what could not be done."""
    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except DatabaseError:
                record("database", "Database unavailable: %s; answered 503", what, log=log)
                return unavailable(what)
        return wrapper
    return decorate
