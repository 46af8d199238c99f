"""Experiments through the real stack: waffle flags, holdout, exclusion groups, caps, exposures
and the experiment_arm signal choosing a PersonalizedBlock variant in a real page render."""

import hashlib

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from waffle.models import Flag

from microadjust_cms.experiments.models import Arm, ExclusionGroup, Experiment, Exposure
from microadjust_cms.experiments.runtime import assign, experiment_cache
from microadjust_cms.visitor.context import VisitorContext

from .conftest import DESKTOP_UA
from .helpers import stored_event, variants, visitor_client

pytestmark = pytest.mark.django_db



def make_experiment(slug="hero-test", arms=(("control", 50, True), ("B", 30, False), ("C", 20, False)),
                    percent=100, **fields):
    experiment = Experiment.objects.create(name=slug, slug=slug, status="running", goal_name="signup", **fields)
    for name, weight, control in arms:
        Arm.objects.create(experiment=experiment, name=name, weight=weight, is_control=control)
    if percent >= 100:
        Flag.objects.filter(name=experiment.flag_name).update(everyone=True)
    else:
        Flag.objects.filter(name=experiment.flag_name).update(everyone=None, percent=percent)
    experiment_cache.invalidate()
    return experiment


def set_flag(experiment, **fields):
    flag = Flag.objects.get(name=experiment.flag_name)
    for key, value in fields.items():
        setattr(flag, key, value)
    flag.save()
    experiment_cache.invalidate()


def visitor_for(visitor_id, path="/", user=None, **request_kwargs):
    request = RequestFactory().get(path, **request_kwargs)
    if user is not None:
        request.user = user
    visitor = VisitorContext(request)
    visitor.__dict__["visitor_id"] = visitor_id
    return visitor


def ids(n):
    return [hashlib.md5(f"v{i}".encode()).hexdigest() for i in range(n)]


def arm_variant(slug, arm):
    return {"name": f"arm-{arm}", "condition": {"signal": "experiment_arm", "param": slug, "op": "eq", "value": arm},
            "content": f"<p>Arm {arm} content</p>"}


def text_block(block_id, variants, triggers=None):
    value = {"block_id": block_id, "default": "<p>Default content</p>", "variants": variants}
    if triggers:
        value["triggers"] = triggers
    return {"type": "personalized_text", "value": value}


def publish(slug, blocks):
    from wagtail.models import Site

    from microadjust_cms.rendering.block_ids import as_saved
    from project.demo.models import HomePage

    root = Site.objects.get(is_default_site=True).root_page
    page = HomePage(title=slug, slug=slug, body=as_saved(HomePage.body.field, blocks))
    root.add_child(instance=page)
    page.save_revision().publish()
    return page


@pytest.fixture
def hero_page(demo):
    return publish("hero", [text_block("hero", [arm_variant("hero-test", "B"), arm_variant("hero-test", "C")])])


# -- assignment and waffle ------------------------------------------------------------------

def test_assignment_is_deterministic_and_follows_the_weights():
    make_experiment()
    counts = {"control": 0, "B": 0, "C": 0}
    for visitor_id in ids(6000):
        first = assign(visitor_for(visitor_id), "hero-test")
        assert assign(visitor_for(visitor_id), "hero-test") == first
        counts[first.arm] += 1
    assert counts["control"] / 6000 == pytest.approx(0.5, abs=0.03)
    assert counts["B"] / 6000 == pytest.approx(0.3, abs=0.03)
    assert counts["C"] / 6000 == pytest.approx(0.2, abs=0.03)


def test_flag_off_or_zero_percent_gives_everybody_the_control(hero_page):
    experiment = make_experiment()
    set_flag(experiment, everyone=False)
    assert all(assign(visitor_for(v), "hero-test") is None for v in ids(300))
    for _ in range(5):
        assert variants(visitor_client().get("/hero/"))["hero"] == "default"
    set_flag(experiment, everyone=None, percent=None)
    assert all(assign(visitor_for(v), "hero-test") is None for v in ids(300))


def test_the_flag_percent_is_the_share_enrolled():
    make_experiment(percent=30)
    enrolled = sum(assign(visitor_for(v), "hero-test") is not None for v in ids(6000))
    assert enrolled / 6000 == pytest.approx(0.3, abs=0.03)


def test_everyone_on_enrolls_all_the_traffic():
    experiment = make_experiment(percent=0)
    set_flag(experiment, everyone=True)
    assert all(assign(visitor_for(v), "hero-test") is not None for v in ids(300))


def test_waffle_testing_mode_enrolls_a_qa_visitor_without_exposure(hero_page):
    experiment = make_experiment(percent=0)
    set_flag(experiment, testing=True)
    client = visitor_client()
    assert variants(client.get("/hero/"))["hero"] == "default"
    qa = assign(visitor_for(client.visitor_id, f"/hero/?dwft_{experiment.flag_name}=1"), "hero-test")
    assert qa is not None and qa.qa
    shown = variants(client.get("/hero/", {f"dwft_{experiment.flag_name}": "1"}))["hero"]
    assert shown == ("default" if qa.arm == "control" else f"arm-{qa.arm}")
    assert not Exposure.objects.exists()  # QA views are not part of the results
    off = visitor_for(client.visitor_id, f"/hero/?dwft_{experiment.flag_name}=0")
    assert assign(off, "hero-test") is None


def test_waffle_override_parameter(settings):
    settings.WAFFLE_OVERRIDE = True
    experiment = make_experiment(percent=0)
    assert assign(visitor_for(ids(1)[0], f"/?{experiment.flag_name}=1"), "hero-test") is not None
    assert assign(visitor_for(ids(1)[0]), "hero-test") is None


def test_waffle_user_and_group_rules_enroll_qa_users():
    experiment = make_experiment(percent=0)
    tester, grouped, other = (User.objects.create_user(name) for name in ("tester", "grouped", "other"))
    group = Group.objects.create(name="qa")
    grouped.groups.add(group)
    flag = Flag.objects.get(name=experiment.flag_name)
    flag.users.add(tester)
    flag.groups.add(group)
    experiment_cache.invalidate()
    assert assign(visitor_for("u1", user=tester), "hero-test").qa
    assert assign(visitor_for("u2", user=grouped), "hero-test").qa
    assert assign(visitor_for("u3", user=other), "hero-test") is None


def test_group_rules_read_the_users_groups_once_a_request(django_assert_num_queries):
    user = User.objects.create_user("grouped")
    group = Group.objects.create(name="qa")
    user.groups.add(group)
    for slug in ("first", "second"):
        experiment = make_experiment(slug, percent=0)
        Flag.objects.get(name=experiment.flag_name).groups.add(group)
    experiment_cache.invalidate()
    visitor = visitor_for("u9", user=user)
    experiment_cache.get()  # warm, as on any render after the first
    with django_assert_num_queries(1):  # one groups query for both flags
        assert assign(visitor, "first").qa and assign(visitor, "second").qa


def test_a_logged_in_user_gets_the_same_arm_on_two_devices(hero_page):
    make_experiment()
    shown = set()
    user = User.objects.create_user("reader", password="pw")
    for _device in range(2):
        client = visitor_client()  # a new browser, a new visitor cookie
        client.force_login(user)
        shown.add(variants(client.get("/hero/"))["hero"])
    assert len(shown) == 1
    expected = assign(visitor_for(f"u{user.pk}"), "hero-test")
    assert shown == {"default" if expected.arm == "control" else f"arm-{expected.arm}"}


def test_an_experiment_not_running_enrolls_nobody():
    experiment = make_experiment()
    Experiment.objects.filter(pk=experiment.pk).update(status="paused")
    experiment_cache.invalidate()
    assert assign(visitor_for(ids(1)[0]), "hero-test") is None


# -- holdout and exclusion groups -----------------------------------------------------------

def test_the_holdout_gets_defaults_everywhere(settings, demo):
    from microadjust_cms.experiments.runtime import in_holdout

    settings.MICROADJUST_EXPERIMENT_HOLDOUT = 0.5
    make_experiment()
    publish("hero", [text_block("hero", [arm_variant("hero-test", "B"), arm_variant("hero-test", "C"),
                                         arm_variant("hero-test", "control")]),
                     text_block("desktop", [{"name": "desktop", "condition": {"signal": "device", "op": "eq",
                                                                              "value": "desktop"},
                                             "content": "<p>Desktop</p>"}])])
    held = [v for v in ids(200) if in_holdout(v)]
    free = [v for v in ids(200) if not in_holdout(v)]
    assert 60 < len(held) < 140  # about half
    for visitor_id in held[:5]:
        client = visitor_client()
        client.visitor_id = visitor_id
        from microadjust_cms.visitor.context import visitor_cookie_signer

        client.cookies["ma_vid"] = visitor_cookie_signer().sign(visitor_id)
        assert variants(client.get("/hero/", HTTP_USER_AGENT=DESKTOP_UA)) == {"hero": "default", "desktop": "default"}
        assert assign(visitor_for(visitor_id), "hero-test") is None
    assert all(assign(visitor_for(v), "hero-test") is not None for v in free)
    settings.MICROADJUST_EXPERIMENT_HOLDOUT = 0
    assert not any(in_holdout(v) for v in ids(200))


def test_the_holdout_keeps_the_editors_order_in_ranked_blocks(settings):
    from unittest import mock

    from .test_engagement import ranked_value

    settings.MICROADJUST_EXPERIMENT_HOLDOUT = 1.0
    visitor = visitor_for(ids(1)[0])
    # The engagement model is never asked for a holdout visitor (rank raising would show it).
    with mock.patch("microadjust_cms.rendering.ranked_blocks.rank", side_effect=AssertionError("ranked")):
        html = ranked_value().render_for(visitor, {"request": visitor.request})
    assert 'data-ma-variant="ranked"' not in html and 'data-ma-variant="editor"' in html
    assert html.index("the harbour") < html.index("the ferry") < html.index("budgets")
    # Recorded, so the response is private: a shared cache must not hand this order to others.
    assert [(a.variant, a.reason) for a in visitor.adjustments] == [("editor", "holdout")]


def test_exclusion_groups_never_put_a_visitor_in_two_experiments():
    group = ExclusionGroup.objects.create(name="homepage")
    first = make_experiment("first", exclusion_group=group, group_share=50)
    second = make_experiment("second", exclusion_group=group, group_share=50)
    assert (first.group_offset, second.group_offset) == (0.0, 0.5)
    in_first = in_second = 0
    for visitor_id in ids(4000):
        a, b = assign(visitor_for(visitor_id), "first"), assign(visitor_for(visitor_id), "second")
        assert a is None or b is None
        in_first += a is not None
        in_second += b is not None
    assert in_first / 4000 == pytest.approx(0.5, abs=0.04)
    assert in_second / 4000 == pytest.approx(0.5, abs=0.04)


def test_a_grown_share_moves_its_slice_rather_than_overlap_and_a_misfit_is_a_form_error():
    from django.core.exceptions import ValidationError

    group = ExclusionGroup.objects.create(name="checkout")
    first = make_experiment("first", exclusion_group=group, group_share=30)
    second = make_experiment("second", exclusion_group=group, group_share=30)
    assert (first.group_offset, second.group_offset) == (0.0, 0.3)
    first.group_share = 40  # [0, 0.4) would overlap second's [0.3, 0.6)
    first.full_clean()
    first.save()
    assert first.group_offset == 0.6  # moved after the last slice taken
    second.group_share = 10  # shrinks in place: [0.3, 0.4)
    second.full_clean()
    second.save()
    assert second.group_offset == 0.3
    slices = sorted([(e.group_offset, e.group_offset + e.group_share / 100)
                     for e in Experiment.objects.filter(exclusion_group=group)])
    assert all(a_end <= b_start + 1e-9 for (_a, a_end), (b_start, _b) in zip(slices, slices[1:], strict=False))
    for visitor_id in ids(2000):
        assert assign(visitor_for(visitor_id), "first") is None or assign(visitor_for(visitor_id), "second") is None
    # 50 % is free, but in gaps of 30 % and 20 %: a 40 % share fits nowhere
    third = Experiment(name="third", slug="third", exclusion_group=group, group_share=40,
                       goal_type=Experiment.Goal.CONVERSION, goal_name="signup")
    with pytest.raises(ValidationError, match="smaller gaps than 40"):
        third.clean()


# -- binding, exposures, caps ---------------------------------------------------------------

def test_experiment_arm_chooses_the_variant_bound_to_the_arm(hero_page):
    make_experiment()
    seen = set()
    for _ in range(30):
        client = visitor_client()
        arm = assign(visitor_for(client.visitor_id), "hero-test").arm
        response = client.get("/hero/")
        expected = "default" if arm == "control" else f"arm-{arm}"
        assert variants(response)["hero"] == expected
        content = "Default content" if arm == "control" else f"Arm {arm} content"
        assert content.encode() in response.content
        seen.add(arm)
    assert seen == {"control", "B", "C"}


def test_an_exposure_is_recorded_once_when_the_arms_content_renders(hero_page):
    experiment = make_experiment()
    publish("elsewhere", [text_block("other", [{"name": "desktop", "condition": {
        "signal": "device", "op": "eq", "value": "desktop"}, "content": "<p>Desktop</p>"}])])
    client = visitor_client()
    client.get("/elsewhere/")  # assigned, but no block of the experiment on the page
    assert not Exposure.objects.exists()
    client.get("/hero/")
    exposure = Exposure.objects.get()
    assert exposure.visitor_id == client.visitor_id and exposure.experiment == experiment
    assert exposure.arm.name == assign(visitor_for(client.visitor_id), "hero-test").arm
    with CaptureQueriesContext(connection) as queries:
        client.get("/hero/")
    assert Exposure.objects.count() == 1
    assert not [q for q in queries.captured_queries if "microadjust_cms_exposure" in q["sql"]]


def test_a_qa_tester_in_the_holdout_still_sees_the_arms(hero_page, settings):
    """The holdout gives defaults everywhere, except to testers waffle enrolls for QA."""
    settings.MICROADJUST_EXPERIMENT_HOLDOUT = 0.9999  # practically everyone held out
    experiment = make_experiment(percent=0)
    set_flag(experiment, testing=True)
    shown = set()
    for _ in range(12):
        client = visitor_client()
        assert variants(client.get("/hero/"))["hero"] == "default"  # held out
        shown.add(variants(client.get("/hero/", {f"dwft_{experiment.flag_name}": "1"}))["hero"])
    assert shown - {"default"}, "QA testers in the holdout must see the arms' content"


def test_bots_and_head_requests_are_not_exposures(hero_page):
    """As with page views: a crawler without the cookie would add a row per request."""
    make_experiment()
    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    for _ in range(3):
        visitor_client().get("/hero/", HTTP_USER_AGENT=googlebot)
    visitor_client().head("/hero/")
    assert not Exposure.objects.exists()
    visitor_client().get("/hero/")  # a browser still is one
    assert Exposure.objects.count() == 1


def test_exposures_follow_the_event_retention(hero_page, settings):
    from datetime import timedelta

    from django.utils import timezone

    from microadjust_cms.jobs.retention import purge_events

    make_experiment()
    old, recent = visitor_client(), visitor_client()
    old.get("/hero/")
    recent.get("/hero/")
    Exposure.objects.filter(visitor_id=old.visitor_id).update(
        first_exposed_at=timezone.now() - timedelta(days=200))
    purge_events()  # default retention: 180 days
    assert list(Exposure.objects.values_list("visitor_id", flat=True)) == [recent.visitor_id]


@pytest.mark.parametrize("blocks", [
    # A variant of another rule matches first for every desktop visitor ...
    [{"name": "desktop", "condition": {"signal": "device", "op": "eq", "value": "desktop"},
      "content": "<p>Desktop</p>"}, arm_variant("hero-test", "B"), arm_variant("hero-test", "C")],
    # ... or arm B's variant carries an extra condition no desktop visitor meets.
    [{"name": "arm-B", "condition": {"all": [arm_variant("hero-test", "B")["condition"],
                                             {"signal": "device", "op": "eq", "value": "mobile"}]},
      "content": "<p>B on phones</p>"}, arm_variant("hero-test", "C")],
], ids=["another-variant-first", "arm-with-extra-condition"])
def test_every_arm_is_exposed_when_the_block_renders_whichever_variant_shows(demo, blocks):
    """Intention to treat: counting only the visitors who saw their own arm's content would
    leave the control (or B) short of exposures, bias the report and fail the SRM check."""
    from microadjust_cms.experiments import stats

    experiment = make_experiment(arms=(("control", 1, True), ("B", 1, False), ("C", 1, False)))
    publish("mixed", [text_block("hero", blocks)])
    expected = {}
    for _ in range(90):
        client = visitor_client()
        client.get("/mixed/", HTTP_USER_AGENT=DESKTOP_UA)
        expected[client.visitor_id] = assign(visitor_for(client.visitor_id), "hero-test").arm
    recorded = dict(Exposure.objects.filter(experiment=experiment).values_list("visitor_id", "arm__name"))
    assert recorded == expected
    counts = [list(recorded.values()).count(arm) for arm in ("control", "B", "C")]
    assert min(counts) > 0
    assert not stats.sample_ratio_mismatch(counts, [1, 1, 1]).is_mismatch


def test_the_fragment_api_records_exposures(hero_page):
    make_experiment()
    client = visitor_client()
    response = client.get("/microadjust/api/fragment/", {"page": hero_page.pk, "block": "hero"})
    assert response.status_code == 200
    assert Exposure.objects.filter(visitor_id=client.visitor_id).count() == 1


def test_the_goal_query_counts_conversions_after_first_exposure(hero_page):
    from datetime import timedelta

    from django.db.models import Count, Q
    from django.utils import timezone

    from microadjust_cms.tracking.models import Event

    experiment = make_experiment()
    clients = [visitor_client() for _ in range(6)]
    for client in clients:
        client.get("/hero/")
    now = timezone.now()
    Event.objects.create(visitor_id=clients[0].visitor_id, type="conversion", name="signup", occurred_at=now)
    stored_event(now - timedelta(days=1), visitor_id=clients[1].visitor_id, type="conversion",
                 name="signup")  # received before the exposure: not counted
    rows = (Exposure.objects.with_goal(experiment).values("arm__name")
            .annotate(exposures=Count("id"), conversions=Count("id", filter=Q(reached=True))))
    assert sum(r["exposures"] for r in rows) == 6
    assert sum(r["conversions"] for r in rows) == 1


def matching_blocks(n, cap=None):
    condition = {"signal": "device", "op": "eq", "value": "desktop"}
    return [text_block(f"b{i}", [{"name": "desktop", "condition": condition, "content": f"<p>D{i}</p>"}],
                       triggers={"cap": cap} if cap else None) for i in range(n)]


def test_cap_per_page_view(settings, demo):
    settings.MICROADJUST_ADJUSTMENTS_PER_PAGEVIEW = 2
    publish("many", matching_blocks(4))
    chosen = variants(visitor_client().get("/many/", HTTP_USER_AGENT=DESKTOP_UA))
    assert chosen == {"b0": "desktop", "b1": "desktop", "b2": "default", "b3": "default"}


def test_cap_per_visit_and_a_never_capped_block(settings, demo):
    settings.MICROADJUST_ADJUSTMENTS_PER_VISIT = 3
    publish("two", matching_blocks(2))
    publish("exempt", [matching_blocks(1, cap="never")[0]])
    client = visitor_client()
    assert set(variants(client.get("/two/", HTTP_USER_AGENT=DESKTOP_UA)).values()) == {"desktop"}
    assert variants(client.get("/two/", HTTP_USER_AGENT=DESKTOP_UA)) == {"b0": "desktop", "b1": "default"}
    assert variants(client.get("/two/", HTTP_USER_AGENT=DESKTOP_UA)) == {"b0": "default", "b1": "default"}
    assert variants(client.get("/exempt/", HTTP_USER_AGENT=DESKTOP_UA)) == {"b0": "desktop"}
    # Another visitor's visit is their own.
    assert set(variants(visitor_client().get("/two/", HTTP_USER_AGENT=DESKTOP_UA)).values()) == {"desktop"}


def test_arm_content_is_never_capped(settings, hero_page):
    settings.MICROADJUST_ADJUSTMENTS_PER_PAGEVIEW = 0
    make_experiment(arms=(("control", 1, True), ("B", 1000, False)))
    client = visitor_client()
    if assign(visitor_for(client.visitor_id), "hero-test").arm == "B":
        assert variants(client.get("/hero/"))["hero"] == "arm-B"


def test_no_sql_at_render_once_warm_and_the_exposure_write_after_it(hero_page):
    from microadjust_cms.experiments.recording import after_response

    make_experiment()
    page = hero_page.specific
    block = page.body[0]

    def render(visitor_id):
        visitor = visitor_for(visitor_id, "/hero/")
        visitor.request.visitor = visitor
        html = block.render(context={"request": visitor.request, "page": page})
        return visitor, html

    render(ids(1)[0])  # warm: experiments, segments, compiled program
    with CaptureQueriesContext(connection) as rendering:
        visitor, html = render(ids(2)[1])
    assert len(rendering.captured_queries) == 0
    assert visitor.exposures
    with CaptureQueriesContext(connection) as writing:
        after_response(visitor)
    assert len(writing.captured_queries) == 1  # one bulk insert
    with CaptureQueriesContext(connection) as again:
        after_response(visitor)
    assert len(again.captured_queries) == 0  # remembered as stored


# -- the snippet form -----------------------------------------------------------------------

def admin_client():
    User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.login(username="admin", password="pw")
    return client


def experiment_post(arms, **fields):
    data = {"name": "Hero", "slug": "hero", "hypothesis": "", "status": "draft", "goal_type": "conversion",
            "goal_name": "signup", "goal_threshold": "", "traffic_percent": "40", "exclusion_group": "",
            "group_share": "50", "priority": "0", "starts_at": "", "ends_at": "",
            "arms-TOTAL_FORMS": str(len(arms)), "arms-INITIAL_FORMS": "0", "arms-MIN_NUM_FORMS": "0",
            "arms-MAX_NUM_FORMS": "1000"}
    for i, (name, weight, control) in enumerate(arms):
        data.update({f"arms-{i}-name": name, f"arms-{i}-weight": str(weight), f"arms-{i}-ORDER": str(i + 1),
                     f"arms-{i}-id": "", f"arms-{i}-DELETE": ""})
        if control:
            data[f"arms-{i}-is_control"] = "on"
    data.update(fields)
    return data


ADD_URL = "/admin/snippets/microadjust_cms/experiment/add/"


def test_an_editor_creates_a_three_arm_experiment():
    client = admin_client()
    response = client.post(ADD_URL, experiment_post([("control", 50, True), ("B", 30, False), ("C", 20, False)]))
    assert response.status_code == 302, response.content.decode()[:3000]
    experiment = Experiment.objects.get(slug="hero")
    assert [a.name for a in experiment.arms.all()] == ["control", "B", "C"]
    assert float(Flag.objects.get(name="microadjust-exp-hero").percent) == 40.0


@pytest.mark.parametrize(("arms", "fields", "message"), [
    ([("control", 1, True)], {}, "at least two arms"),
    ([("control", 1, True), ("B", 1, True)], {}, "Exactly one arm must be the control"),
    ([("control", 1, False), ("B", 1, False)], {}, "Exactly one arm must be the control"),
    ([("control", 1, True), ("B", 1, False), ("B", 2, False)], {}, "Arm names must be unique"),
    ([("control", 0, True), ("B", 1, False)], {}, "weight must be a positive number"),
    ([("control", 1, True), ("B", 1, False)], {"goal_name": ""}, "Name the conversion"),
    ([("control", 1, True), ("B", 1, False)], {"goal_type": "scroll", "goal_threshold": ""}, "percent (scroll)"),
    ([("control", 1, True), ("B", 1, False)], {"traffic_percent": "120"}, "less than or equal to 100"),
])
def test_bad_experiment_input_is_a_form_error(arms, fields, message):
    client = admin_client()
    response = client.post(ADD_URL, experiment_post(arms, **fields))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Experiment.objects.exists()


# -- the experiment_arm rule in the condition editor ----------------------------------------

def test_an_arm_rule_offers_and_accepts_only_the_chosen_experiments_arms():
    from microadjust_cms.conditions import ConditionError, validate_condition
    from microadjust_cms.signals.registry import registry

    make_experiment("hero-test")
    make_experiment("other-test", arms=(("off", 1, True), ("Z", 1, False)))
    described = registry.get("experiment_arm").describe()
    assert described["choices_by_param"] == {
        "hero-test": [("control", "control (control)"), ("B", "B"), ("C", "C")],
        "other-test": [("off", "off (control)"), ("Z", "Z")]}
    validate_condition({"signal": "experiment_arm", "param": "hero-test", "op": "eq", "value": "B"})
    with pytest.raises(ConditionError, match="Z is not one of the choices"):
        validate_condition({"signal": "experiment_arm", "param": "hero-test", "op": "eq", "value": "Z"})
    with pytest.raises(ConditionError, match="not one of the Experiment"):
        validate_condition({"signal": "experiment_arm", "param": "no-such-test", "op": "eq", "value": "B"})


def test_a_page_bound_to_a_finished_experiment_stays_savable():
    from microadjust_cms.conditions import validate_condition
    from microadjust_cms.signals.registry import registry

    experiment = make_experiment()
    Experiment.objects.filter(pk=experiment.pk).update(status="finished")
    validate_condition({"signal": "experiment_arm", "param": "hero-test", "op": "eq", "value": "B"})
    assert ("hero-test", "hero-test (finished)") in registry.get("experiment_arm").get_param_choices()
