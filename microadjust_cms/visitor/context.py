"""The visitor context: a lazy per-request object at ``request.visitor``.

It answers signals (memoized for the request), loads the profile at most once (one store
round trip, which also counts this page view) and records the adjustments made while rendering
so the middleware knows whether the response must vary by cookie.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from django.conf import settings
from django.core import signing
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import cached_property

from .. import faults
from ..behaviour import profile_page_key
from ..conf import get_setting
from ..signals.registry import registry
from .stores import Profile, StoreUnavailable, get_profile_store

logger = logging.getLogger("microadjust_cms.context")
VISITOR_ID_RE = re.compile(r"^[0-9a-f]{32}$")


@lru_cache(maxsize=4096)
def _verified_visitor_id(cookie: str, _secret_key: str) -> str | None:
    """The id in a signed visitor cookie, or None when forged or malformed. Cached: a returning
    visitor sends the same cookie on every request, and checking the signature is not free."""
    if len(cookie) > 200:
        return None
    try:
        value = visitor_cookie_signer().unsign(cookie)
    except signing.BadSignature:
        return None
    return value if VISITOR_ID_RE.match(value) else None


def visitor_cookie_signer() -> signing.Signer:
    """Signs the visitor cookie (HMAC with SECRET_KEY and the COOKIE_SALT setting)."""
    return signing.Signer(salt=get_setting("COOKIE_SALT"))


def site_now() -> datetime:
    """Now in the site's time zone (``TIME_ZONE``), the zone time signals are defined in (not a
    zone activated for the request). Also cheaper than ``localtime()``: no context-local lookup."""
    return datetime.now(timezone.get_default_timezone()) if settings.USE_TZ else datetime.now()


def query_parameters(request: HttpRequest) -> dict[str, str]:
    """Each query parameter's last value: what ``request.GET.get`` answers. A WSGI request whose
    ``GET`` nothing has read yet is parsed here as Django would (bytes decoded with the request's
    encoding, blank values kept, at most ``DATA_UPLOAD_MAX_NUMBER_FIELDS``), without building
    the QueryDict, whose per-parameter bookkeeping costs several times the parsing on every
    personalized view with a query string; a query string seen lately is not parsed again (the
    answer is then shared: read only). Too many fields: none (``request.GET`` refuses them)."""
    if type(request) is not WSGIRequest or "GET" in request.__dict__:
        try:
            query = request.GET
        except Exception:  # TooManyFieldsSent and the like: no parameter is trusted
            return {}
        return {key: values[-1] for key, values in dict.items(query) if values}
    raw = request.META.get("QUERY_STRING", "")
    if not raw:
        return {}
    encoding = request.encoding or settings.DEFAULT_CHARSET
    if len(raw) > 512:  # long ones are mostly unique (click ids): not worth a cache entry
        return _parse_query(raw, encoding, settings.DATA_UPLOAD_MAX_NUMBER_FIELDS)
    return _cached_query(raw, encoding, settings.DATA_UPLOAD_MAX_NUMBER_FIELDS)


def _parse_query(raw: str, encoding: str, max_fields: int | None) -> dict[str, str]:
    data = raw.encode("iso-8859-1")  # the WSGI server's str holds the bytes as latin-1
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        text = data.decode("iso-8859-1")  # as QueryDict: some user agents send other bytes
    try:
        return dict(parse_qsl(text, keep_blank_values=True, encoding=encoding,
                              max_num_fields=max_fields))
    except ValueError:
        return {}


#: Campaign links send the same query string to many visitors (``?utm_source=newsletter``):
#: parsed once a process. The dict is shared: read it, never change it.
_cached_query = lru_cache(maxsize=1024)(_parse_query)


def known_visitor_id(request: HttpRequest) -> str | None:
    """The logged-in user (``u<pk>``) or the id in a valid signed visitor cookie; None for a
    first visit or a forged cookie. Never creates an id: callers decide whether to."""
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return f"u{user.pk}"
    cookie = request.COOKIES.get(get_setting("COOKIE_NAME"))
    return _verified_visitor_id(cookie, settings.SECRET_KEY) if cookie else None


_new_tuple = tuple.__new__


class UnknownSignal(LookupError):
    pass


def _nobody_held_out(_visitor: VisitorContext) -> bool:
    return False


_holdout_rule: Callable[[VisitorContext], bool] = _nobody_held_out

#: Page key → the auto-optimized blocks rendered on it in this process
#: (``rendering.optimizer``): their counters come with the profile, in the same round trip.
optimized_blocks: dict[str, tuple[str, ...]] = {}

#: Called with the visitor once the response is built (the middleware; experiments write their
#: exposures and the visit's cap count here). Filled by ``apps.ready``.
after_response_hooks: list[Callable[[VisitorContext], None]] = []


def set_holdout_rule(rule: Callable[[VisitorContext], bool]) -> None:
    """Install who is held out (``VisitorContext.held_out``); ``apps.ready`` installs the
    experiments' global holdout."""
    global _holdout_rule
    _holdout_rule = rule


class Adjustment(NamedTuple):
    """One decision taken while rendering: block ``block_id`` showed ``variant``."""

    block_id: str
    variant: str
    reason: str = "match"


def opted_out(request: HttpRequest) -> bool:
    """Do Not Track or Global Privacy Control is set (and ``HONOUR_DNT`` is on)."""
    meta = request.META
    return get_setting("HONOUR_DNT") and (meta.get("HTTP_DNT") == "1" or meta.get("HTTP_SEC_GPC") == "1")


def tracking_allowed(request: HttpRequest) -> bool:
    """Do Not Track, Global Privacy Control and the consent setting, in that order."""
    if opted_out(request):
        return False
    if get_setting("REQUIRE_CONSENT"):
        return request.COOKIES.get(get_setting("CONSENT_COOKIE_NAME")) == "1"
    return True


class VisitorContext:
    """Everything a condition may ask about the visitor of one request."""

    #: Preview and testutils force signal values here (name or (name, param) → value).
    overrides: dict[Any, Any]

    def __init__(self, request: HttpRequest, *, overrides: dict[Any, Any] | None = None,
                 simulated: bool = False) -> None:
        self.request = request
        self.overrides = dict(overrides or {})
        self.simulated = simulated  # preview / tests: never reads or writes the store
        self.adjustments: list[Adjustment] = []
        self.page_key: str | None = None
        self.issue_cookie = False
        #: Signal values (and the profile) computed this request; compiled rules read it.
        self.memo: dict[Any, Any] = {}
        #: Results of variant tests this request (a test shared by blocks runs once).
        self.results: dict[Any, bool] = {}
        #: Experiments (``experiments.recording``): (experiment id, arm id) shown this request,
        #: and the adjustments that count toward the frequency caps.
        self.exposures: list[tuple[int, int]] = []
        self.counted_adjustments = 0
        self.visit_adjustments_before: int | None = None

    # -- identity --------------------------------------------------------------------------
    @cached_property
    def tracking_allowed(self) -> bool:
        return not self.simulated and tracking_allowed(self.request)

    @cached_property
    def visitor_id(self) -> str | None:
        """Signed cookie id (a forged or garbage one is replaced), or None when not tracked."""
        if not self.tracking_allowed:
            return None
        visitor_id = known_visitor_id(self.request)
        if visitor_id:
            return visitor_id
        self.issue_cookie = True
        return uuid.uuid4().hex

    # -- state -----------------------------------------------------------------------------
    @cached_property
    def query(self) -> dict[str, str]:
        """The request's query parameters, last value of each (``query_parameters``)."""
        return query_parameters(self.request)

    @cached_property
    def now(self) -> datetime:
        return site_now()

    def set_page(self, page: Any) -> None:
        """Called when Wagtail serves a page: page views are counted per page id."""
        if self.page_key is None and getattr(page, "pk", None) is not None:
            self.page_key = profile_page_key(page.pk, None)

    @property
    def profile(self) -> Profile:
        """Loaded once, counting this page view in the same round trip.

        Raises ``StoreUnavailable`` when the store is down (tried once a request), so profile
        rules turn false.
        """
        memo = self.memo
        if "__profile" not in memo:
            try:
                memo["__profile"] = self._load_profile()
            except StoreUnavailable as exc:
                memo["__profile"] = exc
        value = memo["__profile"]
        if isinstance(value, StoreUnavailable):
            raise value
        return value

    def _load_profile(self) -> Profile:
        if "profile" in self.overrides:
            return self.overrides["profile"]
        visitor_id = self.visitor_id
        if visitor_id is None:
            return Profile.empty()
        record = self.request.method in ("GET", "HEAD") and self.signal("device") != "bot"
        page_key = self.page_key or profile_page_key(None, self.request.path)
        try:
            return get_profile_store().load(
                visitor_id, page_key,
                record_view=record and not getattr(self.request, "_ma_no_record", False),
                now=time.time(), counters=optimized_blocks.get(page_key, ()))
        except StoreUnavailable:
            faults.record("profile_store", "Profile store unavailable; profile signals are false",
                          log=logger)
            raise

    @cached_property
    def held_out(self) -> bool:
        """What every render path obeys (PersonalizedBlock, RankedBlock, ``{% ifvisitor %}``,
        the fragment API): no adjustment for this visitor this request. The rule is the
        experiments' global holdout (QA testers excepted), installed by ``apps.ready`` through
        ``set_holdout_rule``: this layer knows no experiment. Asked once a request."""
        return _holdout_rule(self)

    # -- signals ---------------------------------------------------------------------------
    def signal(self, name: str, param: str | None = None) -> Any:
        """The value of a signal for this visitor, computed at most once a request."""
        key = name if param is None else (name, param)
        memo = self.memo
        if key in memo:
            return memo[key]
        if key in self.overrides:
            value = self.overrides[key]
        else:
            signal = registry.get(name)
            if signal is None:
                raise UnknownSignal(name)
            value = signal.resolve(self, param)
        memo[key] = value
        return value

    # -- adjustments -----------------------------------------------------------------------
    def record_adjustment(self, block_id: str, variant: str, reason: str = "match") -> None:
        # tuple.__new__: an Adjustment without the NamedTuple's Python-level __new__ (per block)
        self.adjustments.append(_new_tuple(Adjustment, (block_id, variant, reason)))

    @property
    def adjusted(self) -> bool:
        return bool(self.adjustments)


def get_visitor(request: HttpRequest) -> VisitorContext:
    """``request.visitor``, creating one for requests the middleware did not see."""
    visitor = getattr(request, "visitor", None)
    if visitor is None:
        visitor = VisitorContext(request)
        request.visitor = visitor
    return visitor
