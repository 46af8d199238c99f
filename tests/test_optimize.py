"""Auto-optimize: Thompson sampling among matching variants, counters in the profile store."""

import json
import random
import re

import pytest
from django.test import Client
from django.utils import timezone

from microadjust_cms.behaviour import summarize
from microadjust_cms.rendering.optimizer import (
    Posterior,
    choose,
    dominant,
    optimizer_from,
    posteriors,
)
from microadjust_cms.tracking.models import Event
from microadjust_cms.tracking.schema import BatchError, validate_batch
from microadjust_cms.visitor.context import optimized_blocks
from microadjust_cms.visitor.stores import get_profile_store

OPT_ATTR = re.compile(r'data-ma-block="(tides-1)" data-ma-variant="([^"]+)"[^>]*?(?: data-ma-opt="([^"]+)")?>')


def test_posterior_takes_its_prior_from_the_other_contexts_and_caps_successes():
    counters = {"n|cluster-1|video": 200, "s|cluster-1|video": 100,  # 50% elsewhere
                "n|cluster-2|video": 4, "s|cluster-2|video": 9}       # more goals than trials
    posts = posteriors(["video", "default"], counters, "cluster-2", prior_trials=20)
    video = posts["video"]
    assert (video.trials, video.successes) == (4, 4)
    # Beta(1 + 20·0.5 + 4, 1 + 20·0.5 + 0): the other contexts count as 20 trials, not 200.
    assert (video.alpha, video.beta) == (15.0, 11.0)
    assert posts["default"] == Posterior(1.0, 1.0, 0, 0)


def test_a_dominant_variant_stops_the_exploration():
    posts = {"video": Posterior(60, 42, 100, 59), "default": Posterior(12, 90, 100, 11)}
    assert dominant(posts, probability=0.95, min_trials=100) == "video"
    assert dominant(posts, probability=0.95, min_trials=101) is None  # not tried enough yet
    rng = random.Random(1)
    assert {choose(posts, lambda _label: rng.random(), min_share=0.2, stop_probability=0.95, stop_min_trials=100)
            for _ in range(200)} == {("video", "optimize-stop")}


def test_every_candidate_keeps_its_minimum_share_while_learning():
    posts = {"a": Posterior(40, 10, 48, 39), "b": Posterior(3, 30, 31, 2), "c": Posterior(2, 30, 30, 1)}
    rng = random.Random(7)
    picks = [choose(posts, lambda _label: rng.random(), min_share=0.1, stop_probability=0.95, stop_min_trials=1000)[0]
             for _ in range(6000)]
    shares = {name: picks.count(name) / len(picks) for name in posts}
    assert shares["a"] > 0.75  # Thompson sampling favours the clear leader...
    assert shares["b"] >= 0.085 and shares["c"] >= 0.085  # ...but the floor keeps ~10% each


def test_thompson_sampling_finds_each_contexts_best_variant_within_2000_visitors():
    """Two contexts whose best variants differ, rewards drawn from hidden rates: the same
    choose/posteriors the render path uses, counters as the collect endpoint keeps them."""
    truth = {"cluster-1": {"video": 0.30, "simpler": 0.12, "default": 0.08},
             "cluster-2": {"video": 0.10, "simpler": 0.25, "default": 0.12}}
    rng = random.Random(2026)
    counters: dict[str, int] = {}
    late = {context: [] for context in truth}
    for visitor in range(2000):
        context = "cluster-1" if visitor % 2 else "cluster-2"
        posts = posteriors(list(truth[context]), counters, context, prior_trials=20)
        variant, _reason = choose(posts, lambda _label: rng.random(), min_share=0.05,
                                  stop_probability=0.95, stop_min_trials=100)
        counters[f"n|{context}|{variant}"] = counters.get(f"n|{context}|{variant}", 0) + 1
        if rng.random() < truth[context][variant]:
            counters[f"s|{context}|{variant}"] = counters.get(f"s|{context}|{variant}", 0) + 1
        if visitor >= 1500:
            late[context].append(variant)
    for context, rates in truth.items():
        best = max(rates, key=rates.get)
        posts = posteriors(list(rates), counters, context, prior_trials=20)
        assert max(posts, key=lambda name: posts[name].mean) == best
        assert late[context].count(best) / len(late[context]) > 0.75


def test_settings_are_read_only_when_switched_on_and_valid():
    assert optimizer_from(None) is None
    assert optimizer_from({"enabled": False, "goal": "click"}) is None
    assert optimizer_from({"enabled": True, "goal": "not a goal!"}) is None
    assert optimizer_from({"enabled": True, "context": "segment"}) is None  # which segment?
    found = optimizer_from({"enabled": True, "goal": "complete", "context": "all", "min_share": 0.9})
    assert (found.goal, found.context, found.min_share) == ("complete", "all", 0.2)  # capped


def test_the_opt_field_is_validated_and_counted():
    now = timezone.now()
    t = int(now.timestamp() * 1000)
    base = {"type": "impression", "t": t, "block": "b1", "variant": "v"}
    for bad in ("", "all", "everyone click", "cluster-x click", "all click!", "all " + "g" * 61, 7):
        with pytest.raises(BatchError, match="opt"):
            validate_batch({"v": 1, "events": [{**base, "opt": bad}]}, now=now, max_events=5)
    rows = validate_batch({"v": 1, "events": [
        {**base, "opt": "in purchase"},
        {"type": "click", "t": t, "block": "b1", "variant": "v", "opt": "in purchase"},  # not the goal
        {"type": "conversion", "t": t, "block": "b1", "variant": "v", "name": "purchase", "opt": "in purchase"},
        {"type": "conversion", "t": t, "block": "b1", "variant": "v", "name": "other", "opt": "in purchase"},
        {"type": "impression", "t": t, "block": "b2", "variant": "w"},  # not optimized
    ]}, now=now, max_events=5)
    assert summarize(rows).counters == {"b1": {"n|in|v": 1, "s|in|v": 1}}


def course_module(client, path):
    html = client.get(path).content.decode()
    return OPT_ATTR.search(html).groups()


@pytest.mark.django_db
def test_a_struggling_learner_gets_an_optimized_module_and_its_events_teach_the_block(demo, settings):
    settings.MICROADJUST_EXPERIMENT_HOLDOUT = 0.0
    optimized_blocks.clear()
    course = demo["course"].url
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36")
    # First view: not struggling, only the default matches: nothing to choose, nothing to count.
    assert course_module(client, course) == ("tides-1", "default", None)
    # Back on the module (page_views >= 2): video, simpler and the default are candidates.
    block, variant, opt = course_module(client, course)
    assert variant in {"video", "simpler", "default"}
    assert opt == "none complete"  # not clustered yet; goal "complete"
    events = [{"type": "impression", "t": int(timezone.now().timestamp() * 1000), "page": demo["course"].pk,
               "block": block, "variant": variant, "opt": opt},
              {"type": "conversion", "t": int(timezone.now().timestamp() * 1000), "page": demo["course"].pk,
               "block": block, "variant": variant, "name": "complete", "opt": opt}]
    response = client.post("/microadjust/collect/", data=json.dumps({"v": 1, "events": events}),
                           content_type="application/json", headers={"origin": "http://testserver"})
    assert response.status_code == 204
    assert Event.objects.filter(block_id=block).count() == 2
    counters = get_profile_store().load_counters([block])[block]
    assert counters == {f"n|none|{variant}": 1, f"s|none|{variant}": 1}
    # The page is now known to hold optimized blocks: the next load brings their counters along.
    page_key = str(demo["course"].pk)
    assert set(optimized_blocks[page_key]) == {"tides-1", "tides-2"}
    response = client.get(course)
    assert response.wsgi_request.visitor.profile.counters[block] == counters
    reasons = {a.block_id: a.reason for a in response.wsgi_request.visitor.adjustments}
    assert reasons["tides-1"].startswith("optimize")


@pytest.mark.django_db
def test_holdout_visitors_and_previews_never_explore(demo, settings):
    settings.MICROADJUST_EXPERIMENT_HOLDOUT = 1.0
    client = Client()
    for _ in range(3):
        block, variant, opt = course_module(client, demo["course"].url)
        assert (variant, opt) == ("default", None)


@pytest.mark.django_db
def test_switched_off_site_wide_the_first_match_wins(demo, settings):
    settings.MICROADJUST_EXPERIMENT_HOLDOUT = 0.0
    settings.MICROADJUST_OPTIMIZE = False
    client = Client()
    course_module(client, demo["course"].url)
    assert course_module(client, demo["course"].url) == ("tides-1", "video", None)


def test_the_block_stores_optimize_only_when_switched_on():
    from wagtail.blocks import StructBlockValidationError

    from microadjust_cms.rendering.blocks import PersonalizedBlock
    from project.demo.blocks import ModuleBlock

    block = PersonalizedBlock(ModuleBlock())
    value = block.to_python({"block_id": "m", "default": {"heading": "H", "text": "<p>t</p>"},
                             "variants": [], "optimize": {"enabled": False, "goal": "click"}})
    assert "optimize" not in block.get_prep_value(value)
    value = block.to_python({"block_id": "m", "default": {"heading": "H", "text": "<p>t</p>"},
                             "variants": [], "optimize": {"enabled": True, "goal": "complete",
                                                          "context": "all", "min_share": 0.1}})
    assert block.get_prep_value(value)["optimize"]["goal"] == "complete"
    assert value.optimizer.goal == "complete"
    optimize = block.child_blocks["optimize"]
    with pytest.raises(StructBlockValidationError) as raised:
        optimize.clean(optimize.to_python({"enabled": True, "goal": "no spaces allowed",
                                           "context": "segment", "segment": "", "min_share": 0.05}))
    assert set(raised.value.block_errors) == {"goal", "segment"}


def test_a_visitors_draws_repeat_within_a_visit_and_change_with_the_next():
    from types import SimpleNamespace

    from microadjust_cms.rendering.optimizer import visit_uniform

    def visitor(visits):
        return SimpleNamespace(visitor_id="a" * 32, profile=SimpleNamespace(visits=visits))

    first, again = visit_uniform(visitor(1), "b1"), visit_uniform(visitor(1), "b1")
    later = visit_uniform(visitor(2), "b1")
    assert [first(label) for label in ("floor", "video")] == [again(label) for label in ("floor", "video")]
    assert first("video") != later("video") and first("video") != first("simpler")
    assert all(0 < first(str(i)) < 1 for i in range(100))
