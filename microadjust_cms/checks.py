"""System checks: catch a broken installation at ``manage.py check``, not at the first visitor."""

from __future__ import annotations

import re
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .conf import get_setting

MIDDLEWARE = "microadjust_cms.visitor.middleware.VisitorContextMiddleware"
#: Paths that moved in 0.2 and still work, with a DeprecationWarning, until 0.3 (``_moved``).
OLD_MIDDLEWARE = "microadjust_cms.middleware.VisitorContextMiddleware"
OLD_STORES = "microadjust_cms.stores."
WAFFLE_MIDDLEWARE = "waffle.middleware.WaffleMiddleware"
RATE_RE = re.compile(r"^\d+/\d*[smhd]$")


@register()
def check_installation(app_configs: Any = None, **kwargs: Any) -> list:
    problems: list = []
    middleware = [MIDDLEWARE if entry == OLD_MIDDLEWARE else entry for entry in settings.MIDDLEWARE]
    if OLD_MIDDLEWARE in settings.MIDDLEWARE:
        problems.append(Warning(
            f"{OLD_MIDDLEWARE} moved to {MIDDLEWARE}; the old path goes in 0.3.",
            hint=f'Use "{MIDDLEWARE}" in MIDDLEWARE.', id="microadjust_cms.W005"))
    if MIDDLEWARE not in middleware:
        problems.append(Warning(
            f"{MIDDLEWARE} is not in MIDDLEWARE: visit and page-view signals and the "
            "Vary/Cache-Control headers will be missing.", id="microadjust_cms.W001"))
    else:
        position = middleware.index(MIDDLEWARE)
        for needed in ("django.contrib.sessions.middleware.SessionMiddleware",
                       "django.contrib.auth.middleware.AuthenticationMiddleware"):
            if needed in middleware and middleware.index(needed) > position:
                problems.append(Error(f"{MIDDLEWARE} must come after {needed}.",
                                      id="microadjust_cms.E001"))
    path = get_setting("PROFILE_STORE")
    if path.startswith(OLD_STORES):
        new = "microadjust_cms.visitor.stores." + path[len(OLD_STORES):]
        problems.append(Warning(f"MICROADJUST_PROFILE_STORE {path!r} moved to {new!r}; the old path goes in 0.3.",
                                id="microadjust_cms.W006"))
    try:
        import_string(path)
    except ImportError as exc:
        problems.append(Error(f"MICROADJUST_PROFILE_STORE {path!r} cannot be imported: {exc}",
                              id="microadjust_cms.E002"))
    if path.endswith("RedisProfileStore"):
        alias = get_setting("REDIS_ALIAS")
        backend = settings.CACHES.get(alias, {}).get("BACKEND", "")
        if "django_redis" not in backend:
            problems.append(Error(
                f"The Redis profile store needs CACHES[{alias!r}] to use django-redis "
                f"(found {backend!r}).", id="microadjust_cms.E003"))
    rate = get_setting("COLLECT_RATE")
    if not isinstance(rate, str) or not RATE_RE.match(rate):  # django-ratelimit's rate syntax
        problems.append(Error(f"MICROADJUST_COLLECT_RATE {rate!r} is not a rate like '120/m'.",
                              id="microadjust_cms.E005"))
    days = get_setting("EVENT_RETENTION_DAYS")
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        problems.append(Error("MICROADJUST_EVENT_RETENTION_DAYS must be a whole number of days, "
                              "at least 1.", id="microadjust_cms.E006"))
    if "wagtail.contrib.settings" not in settings.INSTALLED_APPS:
        problems.append(Warning(
            "wagtail.contrib.settings is not in INSTALLED_APPS: editors cannot fix the number of "
            "clusters or the clustering method (Settings → Clustering); runs use the site's "
            "settings.", hint='Add "wagtail.contrib.settings" to INSTALLED_APPS.',
            id="microadjust_cms.W003"))
    low_high = get_setting("CLUSTER_K_RANGE")
    if not (isinstance(low_high, list | tuple) and len(low_high) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in low_high)
            and 2 <= low_high[0] <= low_high[1]):
        problems.append(Error(f"MICROADJUST_CLUSTER_K_RANGE {low_high!r} must be two whole numbers "
                              "(lowest, highest), 2 <= lowest <= highest.", id="microadjust_cms.E007"))
    if get_setting("CLUSTER_METHOD") not in ("kmeans", "hierarchical"):
        problems.append(Error(f"MICROADJUST_CLUSTER_METHOD {get_setting('CLUSTER_METHOD')!r} must be "
                              "'kmeans' or 'hierarchical'.", id="microadjust_cms.E008"))
    idle = get_setting("VISIT_IDLE_SECONDS")
    if not isinstance(idle, int | float) or idle <= 0:
        problems.append(Error("MICROADJUST_VISIT_IDLE_SECONDS must be a positive number.",
                              id="microadjust_cms.E004"))
    return problems


@register()
def check_waffle(app_configs: Any = None, **kwargs: Any) -> list:
    """Experiments are gated by waffle flags: without waffle's app, saving an experiment and
    rendering a block bound to one fail, so a missing app is an error, not a warning (and not the
    ImproperlyConfigured traceback waffle raises, see ``experiments.runtime.connect_signals``)."""
    if not apps.is_installed("waffle"):
        return [Error(
            '"waffle" is not in INSTALLED_APPS: microadjust_cms gates its experiments with '
            "django-waffle flags (the Experiments admin and blocks bound to an experiment need them).",
            hint='Add "waffle" to INSTALLED_APPS and "waffle.middleware.WaffleMiddleware" to '
                 "MIDDLEWARE, then run migrate.", id="microadjust_cms.E009")]
    from waffle import get_waffle_flag_model

    problems: list = []
    try:
        get_waffle_flag_model()
    except ImproperlyConfigured as exc:  # a swapped WAFFLE_FLAG_MODEL whose app is missing
        problems.append(Error(f"Experiments need waffle's flag model: {exc}.", id="microadjust_cms.E010"))
    if WAFFLE_MIDDLEWARE not in settings.MIDDLEWARE:
        problems.append(Warning(
            f"{WAFFLE_MIDDLEWARE} is not in MIDDLEWARE: a tester who turns an experiment on with "
            "waffle's testing mode (dwft_<flag>=1) gets no cookie that keeps it: their next pages "
            "count them as an ordinary visitor.", hint=f'Add "{WAFFLE_MIDDLEWARE}" to MIDDLEWARE.',
            id="microadjust_cms.W004"))
    return problems


@register(Tags.urls)
def check_urls(app_configs: Any = None, **kwargs: Any) -> list:
    from django.urls import NoReverseMatch, reverse

    try:
        reverse("microadjust:collect")
    except NoReverseMatch:
        return [Warning(
            "microadjust_cms.urls is not included: the tracker has nowhere to send events and "
            "the fragment API is missing.",
            hint='Add path("microadjust/", include("microadjust_cms.urls")) to your URLconf.',
            id="microadjust_cms.W002")]
    return []
