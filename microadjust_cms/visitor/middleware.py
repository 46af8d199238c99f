"""``VisitorContextMiddleware``: a lazy visitor context in, headers and a cookie out only when
something happened. A page with no personalized block never touches the profile store."""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import import_module
from time import perf_counter

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers

from .. import metrics
from ..conf import get_setting
from .context import VisitorContext, after_response_hooks, visitor_cookie_signer

#: No session key holds a control character; PostgreSQL refuses a NUL in any query.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class VisitorContextMiddleware:
    """Place after SessionMiddleware and AuthenticationMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        forget_unusable_session(request)
        visitor = VisitorContext(request)
        request.visitor = visitor
        started = perf_counter()
        response = self.get_response(request)
        visitor = request.visitor  # preview or tests may have swapped it
        if visitor.page_key is not None and metrics.enabled():  # a Wagtail page was served
            metrics.count_page(perf_counter() - started, visitor.adjustments)
        if visitor.adjustments or visitor.issue_cookie:
            headers = response.headers
            # The patch_* helpers merge with what is there; with nothing there, set it directly.
            if "Vary" in headers:
                patch_vary_headers(response, ("Cookie",))
            else:
                headers["Vary"] = "Cookie"
            if "Cache-Control" in headers:
                patch_cache_control(response, private=True)
            else:
                headers["Cache-Control"] = "private"
        if visitor.issue_cookie and not visitor.simulated:
            set_visitor_cookie(response, visitor.visitor_id)
        for hook in after_response_hooks:  # experiments: exposures and the visit's cap count
            hook(visitor)
        return response


def set_visitor_cookie(response: HttpResponse, visitor_id: str) -> None:
    """The signed first-party visitor cookie (HttpOnly; the tracker never reads it)."""
    response.set_cookie(
        get_setting("COOKIE_NAME"), visitor_cookie_signer().sign(visitor_id),
        max_age=get_setting("COOKIE_MAX_AGE"), secure=get_setting("COOKIE_SECURE"),
        httponly=True, samesite=get_setting("COOKIE_SAMESITE"))


def forget_unusable_session(request: HttpRequest) -> None:
    """A session cookie with a control character names no session, but looking it up fails on
    PostgreSQL ("text fields cannot contain NUL"): a 500 on any page, a 503 at collect. A quoted
    cookie carries one in plain ASCII (``sessionid="abcdefgh\\000"``). Such a request gets an
    empty session, as an unknown key does, so the user (still lazy) is anonymous. Called once a
    request, by the middleware, before anything reads the session (the endpoints included)."""
    key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if key and _CONTROL_RE.search(key) and hasattr(request, "session"):
        request.session = import_module(settings.SESSION_ENGINE).SessionStore()
