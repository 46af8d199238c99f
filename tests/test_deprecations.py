"""The import paths of 0.1 keep working for one release, each with a DeprecationWarning that
names the new path and points at the code that imported it."""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

import pytest
from django.core.checks import run_checks

from microadjust_cms.visitor.stores.cache import CacheProfileStore

from .conftest import MOBILE_UA
from .helpers import variants

PACKAGE = Path(__file__).resolve().parent.parent / "microadjust_cms"

#: Old module → new module, with a name each must still give (the README's public imports).
OLD_PATHS = {
    "microadjust_cms.blocks": ("microadjust_cms.rendering.blocks", "PersonalizedBlock"),
    "microadjust_cms.ranked_blocks": ("microadjust_cms.rendering.ranked_blocks", "RankedBlock"),
    "microadjust_cms.decisions": ("microadjust_cms.rendering.decisions", "decide"),
    "microadjust_cms.preview": ("microadjust_cms.rendering.preview", "PersonalizedPreviewMixin"),
    "microadjust_cms.block_ids": ("microadjust_cms.rendering.block_ids", "as_saved"),
    "microadjust_cms.fragments": ("microadjust_cms.rendering.fragments", "fragment"),
    "microadjust_cms.fragment_cache": ("microadjust_cms.rendering.fragment_cache", "clear"),
    "microadjust_cms.simulation": ("microadjust_cms.rendering.simulation", "visitor_for_mode"),
    "microadjust_cms.middleware": ("microadjust_cms.visitor.middleware", "VisitorContextMiddleware"),
    "microadjust_cms.context": ("microadjust_cms.visitor.context", "get_visitor"),
    "microadjust_cms.stores": ("microadjust_cms.visitor.stores", "get_profile_store"),
    "microadjust_cms.stores.base": ("microadjust_cms.visitor.stores.base", "Profile"),
    "microadjust_cms.stores.cache": ("microadjust_cms.visitor.stores.cache", "CacheProfileStore"),
    "microadjust_cms.stores.redis": ("microadjust_cms.visitor.stores.redis", "RedisProfileStore"),
    "microadjust_cms.signal_registry": ("microadjust_cms.signals.registry", "register_signal"),
    "microadjust_cms.builtin_signals": ("microadjust_cms.signals.builtin", "BUILTINS"),
    "microadjust_cms.collect": ("microadjust_cms.tracking.collect", "collect"),
    "microadjust_cms.collect_schema": ("microadjust_cms.tracking.schema", "validate_batch"),
    "microadjust_cms.event_store": ("microadjust_cms.tracking.event_store", "store_events"),
    "microadjust_cms.retention": ("microadjust_cms.jobs.retention", "purge_events"),
    "microadjust_cms.job_locks": ("microadjust_cms.jobs.locks", "job_lock"),
    "microadjust_cms.beat": ("microadjust_cms.jobs.beat", "beat_schedule"),
    "microadjust_cms.cluster_segments": ("microadjust_cms.segments.clusters", "cluster_cache"),
    "microadjust_cms.engagement_signal": ("microadjust_cms.learning.signals", "PREDICTED_ENGAGEMENT"),
    "microadjust_cms.forms": ("microadjust_cms.conditions.forms", "ConditionFormField"),
    "microadjust_cms.experiments.signal": ("microadjust_cms.experiments.signals", "EXPERIMENT_ARM"),
}


def fresh_import(name: str) -> tuple[object, list[warnings.WarningMessage]]:
    sys.modules.pop(name, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = __import__(name, fromlist=["__name__"])  # as an import statement does
    return module, [w for w in caught if issubclass(w.category, DeprecationWarning)]


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_an_old_path_gives_the_same_object_and_warns_where_it_was_imported(old):
    new, name = OLD_PATHS[old]
    module, caught = fresh_import(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert f"{old} moved to {new}" in str(caught[0].message) and "0.3" in str(caught[0].message)
    # Not the shim, nor importlib's frames: the line that imported the old path.
    assert caught[0].filename == __file__
    with pytest.raises(AttributeError, match="moved to"):
        module.no_such_name  # noqa: B018


def test_every_shim_module_is_covered_here():
    shims = set()
    for path in PACKAGE.rglob("*.py"):
        if "from microadjust_cms._moved import moved" in path.read_text():
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            shims.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    assert shims == set(OLD_PATHS)


def test_from_import_of_a_documented_old_path_works():
    sys.modules.pop("microadjust_cms.blocks", None)
    with pytest.warns(DeprecationWarning, match="microadjust_cms.rendering.blocks"):
        from microadjust_cms.blocks import PersonalizedBlock
    from microadjust_cms.rendering.blocks import PersonalizedBlock as new

    assert PersonalizedBlock is new


def test_old_segments_module_names_resolve_with_a_warning():
    from microadjust_cms.segments.membership import segment_cache

    with pytest.warns(DeprecationWarning, match="microadjust_cms.segments.membership.segment_cache"):
        import microadjust_cms.segments as old

        assert old.segment_cache is segment_cache
    with pytest.raises(AttributeError):
        old.no_such_name  # noqa: B018


def test_old_recluster_path_warns_and_runs_the_same_run(monkeypatch):
    from microadjust_cms.learning import cluster_runs, clustering

    calls = []
    monkeypatch.setattr(cluster_runs, "recluster", lambda **kwargs: calls.append(kwargs) or "run")
    with pytest.warns(DeprecationWarning, match="learning.cluster_runs.recluster"):
        assert clustering.recluster(k=3) == "run"
    assert calls == [{"k": 3, "method": None, "progress": None}]


@pytest.mark.filterwarnings("ignore:microadjust_cms.middleware moved:DeprecationWarning")  # Django imports it
def test_the_old_middleware_path_in_settings_still_personalizes_and_a_check_says_to_move(settings, client, demo):
    settings.MIDDLEWARE = [entry.replace("microadjust_cms.visitor.middleware", "microadjust_cms.middleware")
                           for entry in settings.MIDDLEWARE]
    assert "microadjust_cms.middleware.VisitorContextMiddleware" in settings.MIDDLEWARE
    ids = {message.id for message in run_checks()}
    assert "microadjust_cms.W005" in ids and "microadjust_cms.W001" not in ids
    response = client.get("/", HTTP_USER_AGENT=MOBILE_UA)
    assert variants(response)["mobile-banner"] == "mobile" and "Cookie" in response.headers["Vary"]


def test_the_old_profile_store_path_still_loads_and_a_check_says_to_move(settings):
    from microadjust_cms.visitor.stores import get_profile_store

    settings.MICROADJUST_PROFILE_STORE = "microadjust_cms.stores.cache.CacheProfileStore"
    assert isinstance(get_profile_store(), CacheProfileStore)
    problems = {message.id: message.msg for message in run_checks()}
    assert "microadjust_cms.visitor.stores.cache.CacheProfileStore" in problems["microadjust_cms.W006"]
