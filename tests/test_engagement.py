"""The engagement model: labels, training on planted behaviour, scoring and RankedBlock."""

import json
import logging
import re
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from wagtail import blocks

from microadjust_cms.conditions import compile_condition
from microadjust_cms.learning import scoring
from microadjust_cms.learning.engagement import label_impressions, train, train_model, training_set
from microadjust_cms.learning.models import EngagementModel
from microadjust_cms.learning.predictor import FastPredictor
from microadjust_cms.rendering.ranked_blocks import RankedBlock
from microadjust_cms.tracking.models import Event
from microadjust_cms.visitor.context import VisitorContext, visitor_cookie_signer
from microadjust_cms.visitor.stores import Profile

from .engagement_data import plant
from .helpers import visitor_client

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)
MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _fewer_trees(settings):
    settings.MICROADJUST_ENGAGEMENT_MAX_ITER = 30  # enough for planted behaviour, and faster


def frame(rows, columns):
    return pd.DataFrame.from_records(rows, columns=columns)


def impressions(*rows):
    return frame(rows, ["visitor_id", "block_id", "occurred_at"])


def engagements(*rows):
    return frame(rows, ["visitor_id", "block_id", "occurred_at", "type", "value"])


def labels(imps, engs):
    return label_impressions(imps, engs, dwell_ms=10_000, visit_ms=30 * 60_000).tolist()


def test_a_click_or_long_dwell_within_the_visit_is_positive():
    imps = impressions(("v", "b1", NOW), ("v", "b2", NOW), ("v", "b3", NOW), ("w", "b1", NOW))
    engs = engagements(
        ("v", "b1", NOW + 5 * MINUTE, "click", None),          # click in the visit
        ("v", "b2", NOW + MINUTE, "dwell", 6000),               # dwell slices: 6 s + 5 s
        ("v", "b2", NOW + 2 * MINUTE, "dwell", 5000),
        ("v", "b3", NOW + MINUTE, "dwell", 6000),               # 6 s only: not long
        ("x", "b1", NOW + MINUTE, "click", None),               # another visitor's click
    )
    assert labels(imps, engs) == [1, 1, 0, 0]


def test_a_click_in_another_visit_is_not_positive():
    imps = impressions(("v", "b1", NOW), ("v", "b2", NOW))
    engs = engagements(("v", "b1", NOW + 2 * 60 * MINUTE, "click", None),  # two hours later
                       ("v", "b2", NOW - 3 * 24 * 60 * MINUTE, "click", None))  # days before
    assert labels(imps, engs) == [0, 0]
    assert labels(impressions(), engs) == []


def test_training_set_labels_the_stored_events():
    Event.objects.bulk_create([
        Event(visitor_id="v", type="pageview", occurred_at=NOW - 10 * MINUTE, page_id=1),
        Event(visitor_id="v", type="impression", occurred_at=NOW - 9 * MINUTE, block_id="b1",
              content_type="video", tags="travel howto", position=2),
        Event(visitor_id="v", type="click", occurred_at=NOW - 8 * MINUTE, block_id="b1"),
        Event(visitor_id="v", type="impression", occurred_at=NOW - 8 * MINUTE, block_id="b2",
              content_type="article"),
    ])
    data = training_set(now=NOW)
    assert data.y.tolist() == [1, 0]
    names = data.layout.names
    assert data.layout.content_types == ("article", "video")
    assert data.layout.tags == ("howto", "travel")
    row = dict(zip(names, data.X[0], strict=True))
    assert row["block:content_type"] == 1 and row["tag:travel"] == 1 and row["block:position"] == 2
    assert np.isnan(dict(zip(names, data.X[1], strict=True))["block:position"])
    # Columns a live profile never knows are left out: the model could not use them at render.
    assert "click_rate" not in names and "affinity:video" in names


def trained(**kwargs):
    plant(now=NOW, **kwargs)
    return train_model()


def test_training_on_planted_behaviour_separates_video_fans_from_readers():
    progress = []
    plant(now=NOW)
    model = train(progress=lambda done, total: progress.append((done, total)))
    assert model.active and model.inactive_reason == ""
    assert model.auc > 0.85, str(model)
    assert 0 < model.log_loss < 0.6
    assert model.training_rows + model.held_out_rows == Event.objects.filter(type="impression").count()
    assert 0 < model.positives < model.training_rows
    assert progress[0] == (0, 4) and progress[-1] == (4, 4)
    assert str(model).startswith(f"engagement model v{model.version}: ")
    assert "\n" not in str(model) and "active" in str(model)


def test_a_new_model_replaces_the_active_one():
    first = trained()
    second = train_model()
    first.refresh_from_db()
    assert second.version == first.version + 1
    assert list(EngagementModel.objects.filter(active=True)) == [second]


def test_thin_data_is_recorded_but_not_activated(settings):
    first = trained(visitors=40)
    settings.MICROADJUST_ENGAGEMENT_MIN_POSITIVES = 10_000
    refused = train_model()
    assert not refused.active and "positive impressions" in refused.inactive_reason
    first.refresh_from_db()
    assert first.active  # the previous model stays


def test_a_handful_of_impressions_is_too_little_data_not_a_failure():
    """A first night with a few visitors: fitting 8 rows made scikit-learn's binning raise
    ("window shape cannot be larger than input array shape") and the job fail."""
    plant(now=NOW, visitors=4)
    model = train_model()
    assert 0 < model.training_rows < 200
    assert not model.active and model.estimator is None
    assert "too little data" in model.inactive_reason


def test_a_feature_missing_in_every_training_row_does_not_break_the_fit():
    """A site's first night: the training impressions' visitors have no history, so every visitor
    feature is missing in every training row; scikit-learn's binning raised on such a column."""
    from types import SimpleNamespace

    import numpy as np

    from microadjust_cms.learning.engagement import fit_estimator

    rng = np.random.default_rng(3)
    X = np.column_stack([np.full(400, np.nan), rng.integers(0, 4, 400).astype(float)])
    y = (X[:, 1] >= 2).astype(int)
    estimator = fit_estimator(X, y, SimpleNamespace(categorical=np.array([False, False])))
    assert estimator.score(np.column_stack([np.zeros(400), X[:, 1]]), y) == 1.0
    assert np.isnan(X[:, 0]).all()  # the caller's matrix is left as it was


def test_no_events_make_an_inactive_run():
    model = train_model()
    assert not model.active and model.training_rows == 0 and model.estimator is None
    assert "too little data" in model.inactive_reason


def test_undefined_auc_refuses_activation(settings):
    settings.MICROADJUST_ENGAGEMENT_MIN_ROWS = 10
    settings.MICROADJUST_ENGAGEMENT_MIN_POSITIVES = 2
    plant(visitors=10, now=NOW)
    held_out = -(-Event.objects.filter(type="impression").count() // 5)  # the latest 20 %
    latest = Event.objects.filter(type="impression").order_by("-occurred_at")[:held_out]
    # The held-out (latest) impressions all negative: nothing engaged after them.
    Event.objects.filter(type__in=("click", "dwell"),
                         occurred_at__gte=min(e.occurred_at for e in latest) - timedelta(hours=1)).delete()
    model = train_model()
    assert model.auc is None and not model.active
    assert "AUC undefined" in model.inactive_reason


def test_fast_predictor_gives_predict_proba_numbers():
    model = trained()
    from microadjust_cms.learning.engagement import load_estimator

    estimator = load_estimator(model.estimator)
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 3, size=(50, len(model.feature_names)))
    X[rng.random(X.shape) < 0.2] = np.nan
    type_column = model.feature_names.index("block:content_type")
    X[:, type_column] = rng.integers(-1, 4, size=50)  # unknown codes too (-1, 2, 3)
    np.testing.assert_allclose(FastPredictor(estimator)(X), estimator.predict_proba(X)[:, 1], rtol=1e-9)


# -- RankedBlock ------------------------------------------------------------------------------


class Card(blocks.StructBlock):
    title = blocks.CharBlock()

    class Meta:
        template = None


CARD_BLOCK = RankedBlock(Card())
ITEMS = [("Read: the harbour", "article", "travel"), ("Watch: the ferry", "video", "travel"),
         ("Read: budgets", "article", "budget"), ("Watch: how to", "video", "howto")]


def ranked_value(items=ITEMS, highlight=True):
    return CARD_BLOCK.to_python({"block_id": "recs", "options": {"highlight_top": highlight}, "items": [
        {"type": "item", "id": f"0000000{i}-aaaa-bbbb-cccc-dddddddddddd",
         "value": {"content": {"title": title}, "content_type": kind, "tags": tag}}
        for i, (title, kind, tag) in enumerate(items)]})


def visitor_with(profile=None, *, device="desktop", headers=None, simulated=False):
    request = RequestFactory().get("/", **(headers or {}))
    overrides = {"device": device}
    if profile is not None:
        overrides["profile"] = profile
    visitor = VisitorContext(request, overrides=overrides, simulated=simulated)
    request.visitor = visitor
    return request, visitor


FAN = Profile(visits=3, total_pageviews=3, affinity={"video": 9.0, "article": 0.5}, last_seen=1.0)
READER = Profile(visits=3, total_pageviews=6, affinity={"article": 9.0, "video": 0.5}, last_seen=1.0)


def titles(html):
    return re.findall(r"(?:Read|Watch): [^<\"]+", html)


def render(value, visitor_and_request):
    request, _visitor = visitor_and_request
    return str(CARD_BLOCK.render(value, context={"request": request}))


def test_ranked_block_puts_videos_first_for_a_fan_and_articles_for_a_reader():
    trained()
    fan_html = render(ranked_value(), visitor_with(FAN, device="mobile"))
    reader_html = render(ranked_value(), visitor_with(READER))
    assert [t.split(":")[0] for t in titles(fan_html)] == ["Watch", "Watch", "Read", "Read"]
    assert [t.split(":")[0] for t in titles(reader_html)] == ["Read", "Read", "Watch", "Watch"]
    # The top item is highlighted, every item is wrapped for the tracker with its position.
    first = re.search(r"<div class=\"ma-ranked-item[^>]*>", fan_html).group(0)
    assert 'ma-highlight' in first and 'data-ma-highlight="1"' in first and 'data-ma-pos="0"' in first
    assert 'data-ma-kind="video"' in first and 'data-ma-variant="ranked"' in first
    assert fan_html.count("data-ma-highlight") == 1
    ids = re.findall(r'data-ma-block="([^"]+)"', fan_html)
    assert len(set(ids)) == 4 and all(re.fullmatch(r"recs-0000000\d", i) for i in ids)
    assert re.findall(r'data-ma-pos="(\d)"', fan_html) == ["0", "1", "2", "3"]


def test_ranked_block_records_its_order_as_an_adjustment():
    trained()
    request, visitor = visitor_with(FAN, device="mobile")
    render(ranked_value(), (request, visitor))
    (adjustment,) = visitor.adjustments
    assert adjustment.block_id == "recs" and adjustment.reason == "model"
    order = [int(i) for i in adjustment.variant.split(":")[1].split(",")]
    assert sorted(order) == [0, 1, 2, 3] and ITEMS[order[0]][1] == "video"


def test_highlight_can_be_switched_off():
    trained()
    html = render(ranked_value(highlight=False), visitor_with(FAN, device="mobile"))
    assert "data-ma-highlight" not in html and "ma-highlight" not in html


def editor_order(html):
    return titles(html) == [title for title, _k, _t in ITEMS]


def test_editor_order_without_a_model():
    request, visitor = visitor_with(FAN)
    html = render(ranked_value(), (request, visitor))
    assert editor_order(html) and "data-ma-highlight" not in html
    assert 'data-ma-variant="editor"' in html and not visitor.adjustments


def test_editor_order_when_the_model_is_stale(settings):
    model = trained()
    EngagementModel.objects.filter(pk=model.pk).update(trained_at=timezone.now() - timedelta(days=30))
    scoring.model_cache.forget()
    assert editor_order(render(ranked_value(), visitor_with(FAN, device="mobile")))
    assert scoring.usable_model() == (None, "stale")


def test_editor_order_when_the_model_is_thin(settings):
    trained()
    settings.MICROADJUST_ENGAGEMENT_MIN_ROWS = 100_000
    assert editor_order(render(ranked_value(), visitor_with(FAN, device="mobile")))
    assert scoring.usable_model() == (None, "thin")


def test_editor_order_when_the_visitor_opted_out():
    trained()
    request, visitor = visitor_with(headers={"HTTP_DNT": "1"})
    assert editor_order(render(ranked_value(), (request, visitor)))
    assert not visitor.adjustments


def test_editor_order_without_a_request():
    trained()
    assert editor_order(str(CARD_BLOCK.render(ranked_value(), context={})))


def test_one_batched_predict_and_no_sql_per_render_once_warm():
    trained()
    items = [(f"Watch: {i}" if i % 2 else f"Read: {i}", "video" if i % 2 else "article", "travel")
             for i in range(20)]
    value = ranked_value(items)
    request = RequestFactory().get("/")
    request.COOKIES["ma_vid"] = visitor_cookie_signer().sign("a" * 32)
    render(value, (request, VisitorContext(request)))  # warm: the model is loaded
    model = scoring.model_cache.get()
    calls = []
    original = model.predict
    model.predict = lambda X: calls.append(X.shape) or original(X)
    try:
        request = RequestFactory().get("/")
        request.COOKIES["ma_vid"] = visitor_cookie_signer().sign("b" * 32)
        request.visitor = VisitorContext(request)
        with CaptureQueriesContext(connection) as queries:
            html = render(value, (request, request.visitor))
    finally:
        model.predict = original
    assert calls == [(20, len(model.layout.names))]
    assert len(queries) == 0, [q["sql"] for q in queries]
    assert html.count("ma-ranked-item") == 20


def test_a_new_model_reaches_render_through_the_generation(settings):
    """Another process trains: this one sees the new model once the generation changes."""
    trained()
    loaded = scoring.model_cache.get()
    newer = train_model()
    scoring.model_cache.value = loaded  # as if the training ran elsewhere
    scoring.model_cache.checked = 0.0
    scoring.model_cache.invalidate()
    assert scoring.model_cache.get().version == newer.version


def test_preview_visitors_are_ranked_with_their_simulated_profile():
    trained()
    html = render(ranked_value(), visitor_with(FAN, device="mobile", simulated=True))
    assert titles(html)[0].startswith("Watch")


# -- predicted_engagement -------------------------------------------------------------------


def rule(op, value, content_type="video"):
    return {"signal": "predicted_engagement", "param": content_type, "op": op, "value": value}


def test_predicted_engagement_in_a_condition():
    trained()
    likes_video = compile_condition(rule("gte", 50))
    assert likes_video(visitor_with(FAN, device="mobile")[1])
    assert not likes_video(visitor_with(READER)[1])
    _r, visitor = visitor_with(READER)
    assert 0 <= visitor.signal("predicted_engagement", "video") < visitor.signal(
        "predicted_engagement", "article") <= 100


def test_predicted_engagement_is_false_without_a_model(caplog):
    with caplog.at_level(logging.WARNING, logger="microadjust_cms.conditions"):
        assert not compile_condition(rule("gte", 0))(visitor_with(FAN)[1])
    assert "predicted_engagement" in caplog.text


def test_predicted_engagement_param_is_a_known_content_type():
    from microadjust_cms.conditions import ConditionError, validate_condition
    from microadjust_cms.signals.registry import registry

    validate_condition(rule("gte", 10, "podcast"))  # no model yet: any content type
    trained()
    validate_condition(rule("gte", 10, "video"))
    with pytest.raises(ConditionError, match="podcast is not one of"):
        validate_condition(rule("gte", 10, "podcast"))
    described = registry.get("predicted_engagement").describe()
    assert described["param_choices"] == [("article", "article"), ("video", "video")]


def test_a_refused_training_run_does_not_narrow_the_content_types(settings):
    """A thin run stores a layout that knows nothing; the active model still decides."""
    from microadjust_cms.conditions import validate_condition

    trained()
    Event.objects.all().delete()
    refused = train_model()
    assert not refused.active
    validate_condition(rule("gte", 10, "video"))  # the older active model knows video


# -- template tag and end to end --------------------------------------------------------------


def test_render_personalized_tag_renders_a_ranked_block():
    from django.template import Context, Template

    trained()
    request, _visitor = visitor_with(FAN, device="mobile")
    html = Template("{% load microadjust %}{% render_personalized value %}").render(
        Context({"value": ranked_value(), "request": request}))
    assert titles(html)[0].startswith("Watch") and "data-ma-pos" in html


def test_demo_recommendations_follow_a_visitors_recent_clicks(demo, settings):
    """The seed's e-commerce case: post clicks on video cards, the home page puts videos first."""
    settings.ALLOWED_HOSTS = ["*"]
    trained()
    client = visitor_client()
    home = client.get("/")
    cards = re.findall(r'data-ma-block="([^"]+)" data-ma-variant="[a-z]+" data-ma-kind="([a-z]+)"',
                       home.content.decode())
    video = [block for block, kind in cards if kind == "video"]
    assert video, "the demo home page has video cards"
    now_ms = int(timezone.now().timestamp() * 1000)
    events = [{"type": t, "t": now_ms, "block": block, "variant": "editor", "kind": "video", "pos": 3}
              for block in video for t in ("impression", "click")]
    response = client.post("/microadjust/collect/", json.dumps({"v": 1, "events": events}),
                           content_type="application/json", HTTP_ORIGIN="http://testserver")
    assert response.status_code == 204
    kinds = re.findall(r'data-ma-variant="ranked" data-ma-kind="([a-z]+)"', client.get("/").content.decode())
    assert kinds[: len(video)] == ["video"] * len(video)


# -- admin ------------------------------------------------------------------------------------


def test_admin_lists_trained_model_versions(admin_client):
    trained()
    train_model()  # a second run, so the first is no longer active
    EngagementModel.objects.create(version=9, trained_at=timezone.now(), window_days=30, training_rows=3,
                                   positives=1, held_out_rows=1, duration_seconds=0.1,
                                   inactive_reason="too little data: 3 training impressions (at least 200)")
    response = admin_client.get("/admin/microadjust_engagement_models/")
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("Version", "Rows", "Positives", "AUC", "Log loss", "Duration", "Active", "Why not active",
                 "too little data: 3 training impressions"):
        assert text in html, text
    model = EngagementModel.objects.get(active=True)
    assert f"{model.auc:.3f}" in html and "–" in html  # undefined AUC shows as a dash
    assert "/admin/microadjust_engagement_models/new/" not in html  # read-only
    inspect = admin_client.get(f"/admin/microadjust_engagement_models/inspect/{model.pk}/")
    assert inspect.status_code == 200 and "block:content_type" in inspect.content.decode()
