"""The collect endpoint: ``POST`` a batch of events from ``tracker.js``.

The visitor is whoever the signed cookie (or the session) says, never the body. A visitor
without a cookie yet (a first page view with nothing personalized on it) gets one here, so
pages can stay free of Set-Cookie; a cookie that fails its signature is refused. A batch is
validated whole (``schema``) and stored in one transaction, or nothing is stored.
Answers: 204 stored (or ignored under DNT / GPC / missing consent); 400 malformed; 403 foreign
origin or a forged visitor cookie; 405 not POST; 413 too large; 415 not JSON; 429 rate limited; 503
database unavailable (the tracker keeps the batch and retries). Stored events then update the
profile (``behaviour``) in one store round trip; a store that is down is logged, not fatal, and
so is a rate-limit cache that is down (the batch is let through). Such failures are counted and
logged once an interval (``faults``), not once a request.

Storage is the event sink (``EVENT_SINK``, ``tracking.sinks``): the database sink inserts the
batch in the request (``event_store``); the Redis Streams sink appends it to a stream, with the
profile update in the same round trip, and a loader writes it to the database in bulk. A full
stream (the loader down) is a 503 with Retry-After: the tracker keeps the batch.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from functools import lru_cache
from urllib.parse import urlsplit

import orjson
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django_ratelimit.core import is_ratelimited

from .. import metrics
from ..behaviour import BehaviourUpdate, summarize
from ..conf import get_setting
from ..faults import record
from ..responses import problem, unavailable, unavailable_without_database
from ..signals.builtin import device_from_user_agent
from ..visitor.context import known_visitor_id, tracking_allowed
from ..visitor.middleware import set_visitor_cookie
from ..visitor.stores import StoreUnavailable, get_profile_store
from .schema import BatchError, validate_batch
from .sinks import Batch, RateLimited, SinkFull, SinkUnavailable, get_event_sink

logger = logging.getLogger("microadjust_cms.collect")
#: sendBeacon posts text/plain unless given a typed Blob; both carry the same JSON.
CONTENT_TYPES = ("application/json", "text/plain")


def _origin_allowed(request: HttpRequest) -> bool:
    """The Origin (or, without one, the Referer) must be this site (scheme, host and port, as
    Django's CSRF check compares them) or one of ``COLLECT_ALLOWED_ORIGINS``. Behind a proxy that
    terminates TLS, Django must know (``SECURE_PROXY_SSL_HEADER``) for ``https`` pages to match."""
    meta = request.META  # not ``request.headers``: it copies every header to look up two
    origin = _origin_of(meta.get("HTTP_ORIGIN") or meta.get("HTTP_REFERER") or "")
    if origin is None:
        return False
    if origin in _allowed_origins(tuple(get_setting("COLLECT_ALLOWED_ORIGINS"))):
        return True
    try:
        host = request.get_host()
    except Exception:  # DisallowedHost: Django's own check refuses the request
        return False
    return origin == f"{request.scheme}://{host.lower()}"


def _origin_of(header: str) -> str | None:
    """``scheme://host[:port]`` of an Origin or Referer header, lowercased; None when there is
    none ("null", empty, unparsable). Cached: a site's pages send a handful of origins (and
    Referers, which carry paths too, are cached only when short)."""
    return _cached_origin_of(header) if len(header) <= 300 else _parse_origin(header)


@lru_cache(maxsize=1024)
def _cached_origin_of(header: str) -> str | None:
    return _parse_origin(header)


def _parse_origin(header: str) -> str | None:
    if not header or header == "null":
        return None
    try:
        parts = urlsplit(header)
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 bracket)
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


@lru_cache(maxsize=8)
def _allowed_origins(origins: tuple[str, ...]) -> frozenset[str]:
    return frozenset(o.rstrip("/").lower() for o in origins)


def _rate_limited(request: HttpRequest, rate_key: str) -> bool:
    """django-ratelimit's counter lives in the cache (Redis in production). The limit is a
    guard, not a gate: with the cache down a batch is let through (counted, logged once an
    interval) rather than refused, since refusing would lose every event of the outage."""
    try:
        return is_ratelimited(request, group="microadjust:collect",
                              key=lambda _group, _request: rate_key,
                              rate=get_setting("COLLECT_RATE"), increment=True)
    except Exception:
        record("rate_limit", "Rate limit cache unavailable; batches are let through", log=logger)
        return False


def _too_many() -> HttpResponse:
    response = problem(429, "rate_limited", "too many batches; retry later")
    response["Retry-After"] = "60"
    return response


def update_profile(visitor_id: str, update: BehaviourUpdate | None) -> None:
    """Apply the stored batch's behaviour to the profile in one store round trip. The events
    are already stored, so a store that is down costs the profile this batch, not the events:
    logged and counted, and the answer is still 204."""
    if not update:
        return
    try:
        get_profile_store().record_events(visitor_id, update, now=time.time())
    except StoreUnavailable:
        record("profile_store", "Profile store unavailable; batches are stored without a "
               "profile update", log=logger)


@csrf_exempt  # a beacon cannot carry a CSRF token; the Origin check and the cookie stand in
def collect(request: HttpRequest) -> HttpResponse:
    """The endpoint, each answer counted for ``/metrics`` by status and reason."""
    response = _collect(request)
    if metrics.enabled():
        metrics.count_collect(response.status_code, getattr(response, "error_code", "stored"))
    return response


# The event store, or the session behind a logged-in visitor's id: either way nothing is stored.
@unavailable_without_database("events could not be stored", logger)
def _collect(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        response = problem(405, "method_not_allowed", "POST a batch of events")
        response["Allow"] = "POST"
        return response
    if request.content_type not in CONTENT_TYPES:
        return problem(415, "unsupported_media_type",
                       f"send JSON ({' or '.join(CONTENT_TYPES)}), not {request.content_type!r}")
    max_bytes = get_setting("COLLECT_MAX_BYTES")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return problem(400, "bad_request", "Content-Length is not a number")
    if declared > max_bytes:
        return problem(413, "too_large", f"at most {max_bytes} bytes a batch")
    try:
        body = request.read(max_bytes + 1)
    except OSError:  # UnreadablePostError: the client reset the connection mid-body
        return problem(400, "bad_request", "the body could not be read")
    if len(body) > max_bytes:
        return problem(413, "too_large", f"at most {max_bytes} bytes a batch")
    if not _origin_allowed(request):
        return problem(403, "forbidden_origin", "events are accepted from this site's pages only")
    if not tracking_allowed(request):
        response = HttpResponse(status=204)  # Do Not Track, GPC or no consent: nothing is kept
        response.error_code = "not_tracked"  # type: ignore[attr-defined]
        return response
    visitor_id = known_visitor_id(request)
    new_visitor = visitor_id is None
    if new_visitor:
        if request.COOKIES.get(get_setting("COOKIE_NAME")):
            return problem(403, "forged_visitor", "the visitor cookie's signature does not match")
        visitor_id = uuid.uuid4().hex
    # Known visitors by id; newcomers (a fresh id each time) by address. Only django-ratelimit's
    # short-lived cache counter sees the address (hashed); it is not stored.
    rate_key = "addr:" + request.META.get("REMOTE_ADDR", "") if new_visitor else visitor_id
    sink = get_event_sink()
    # A sink that counts the rate limit in its own round trip (the stream sink) does it there.
    if not sink.enforces_rate_limit and _rate_limited(request, rate_key):
        return _too_many()
    try:
        data = orjson.loads(body)  # several times faster than json.loads on the busiest path
    except (ValueError, UnicodeDecodeError):
        # The standard library stays the judge of what is JSON: it reads what orjson refuses
        # (lone surrogates, integers past 64 bits, UTF-16), which the schema then answers for,
        # and words the refusals as before. Only bad input comes here.
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return problem(400, "malformed_json", f"body is not JSON: {exc}"[:200])
        except RecursionError:
            return problem(400, "malformed_json", "body is nested too deeply")
    try:
        rows = validate_batch(data, now=timezone.now(), max_events=get_setting("COLLECT_MAX_EVENTS"))
    except BatchError as exc:
        return problem(400, "invalid_batch", exc.errors)
    batch = Batch(visitor_id, rows, received_at=timezone.now(), update=summarize(rows) or None,
                  device=device_from_user_agent(request.META.get("HTTP_USER_AGENT", "")),
                  rate_key=rate_key if sink.enforces_rate_limit else None)
    try:
        profile_updated = sink.write(batch)
    except RateLimited:
        return _too_many()
    except SinkFull as exc:
        record("event_backlog_full", "Event backlog full (is the loader running?); batches "
               "refused with 503", log=logger)
        return unavailable("the event backlog is full", retry_after=exc.retry_after)
    except SinkUnavailable as exc:
        record(sink.fault_kind, "Event sink %s unavailable (%s); answered 503", sink.name, exc,
               log=logger)
        return unavailable("events could not be stored")
    if not profile_updated:
        update_profile(visitor_id, batch.update)
    response = HttpResponse(status=204)
    if new_visitor:
        set_visitor_cookie(response, visitor_id)
    return response
