"""The JSON refusal every public endpoint (collect, fragment API) answers bad input with."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from .faults import record


def problem(status: int, error: str, detail: str | list[str]) -> JsonResponse:
    """A stable ``error`` code and one line per thing that was wrong; never cached."""
    details = detail if isinstance(detail, list) else [detail]
    response = JsonResponse({"error": error, "detail": details}, status=status)
    response["Cache-Control"] = "no-store"
    response.error_code = error  # type: ignore[attr-defined]  (the metrics' reason label)
    # Django would log every 4xx as a warning and every 503 as an error, one line a request:
    # anyone posting garbage could flood the log, and an outage is reported by ``faults`` once an
    # interval instead.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def unavailable(what: str, retry_after: int = 30) -> JsonResponse:
    """503 with Retry-After: the tracker keeps a refused batch, and a trigger its variant, and
    tries again later."""
    response = problem(503, "unavailable", f"{what}; retry later")
    response["Retry-After"] = str(retry_after)
    return response


def unavailable_without_database(what: str, log: logging.Logger) -> Callable:
    """A view that answers 503 with Retry-After (and counts the outage, logged once an interval)
    when the database cannot be reached, instead of 500: ``what`` says what could not be done.
    Only unreachable (``OperationalError``, ``InterfaceError``): an integrity or data error is a
    bug to see as a 500, not a batch the tracker should keep sending."""
    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except (OperationalError, InterfaceError):
                record("database", "Database unavailable: %s; answered 503", what, log=log)
                return unavailable(what)
        return wrapper
    return decorate
