"""What keeps an experiment's numbers honest beyond the render: the arms' hash ranges stay put,
each experiment owns its waffle flag, QA testers stay QA, previews are not exposures, dwell goals
count a visitor's total, finished experiments free their group slice, drafts leave {% flag %}
off, and templates honour the holdout."""

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User
from django.template import Context, Template
from django.test import Client, RequestFactory
from waffle import flag_is_active
from waffle.models import Flag

from microadjust_cms.experiments.lifecycle import transition
from microadjust_cms.experiments.models import ExclusionGroup, Experiment, Exposure
from microadjust_cms.experiments.report import arm_counts
from microadjust_cms.experiments.runtime import assign, experiment_cache, visitor_in_holdout
from microadjust_cms.visitor.context import VisitorContext

from .conftest import DESKTOP_UA
from .helpers import stored_event, variants, visitor_client
from .test_experiment_editing import edit_post, started
from .test_experiment_report import SNIPPETS, expose, make
from .test_experiments import (
    ADD_URL,
    arm_variant,
    experiment_post,
    ids,
    make_experiment,
    publish,
    set_flag,
    text_block,
    visitor_for,
)

pytestmark = pytest.mark.django_db



@pytest.fixture
def hero_page(demo):
    return publish("hero", [text_block("hero", [arm_variant("hero-test", "B"), arm_variant("hero-test", "C")])])


def arms_of(visitors, slug="exp"):
    experiment_cache.invalidate()
    return {v: getattr(assign(visitor_for(v), slug), "arm", None) for v in visitors}


# -- the arms' order --------------------------------------------------------------------------

def test_reordering_a_started_experiments_arms_moves_nobody(admin_client):
    experiment = started()
    people = ids(300)
    before = arms_of(people)
    data = edit_post(experiment)
    data["arms-0-ORDER"], data["arms-1-ORDER"] = "2", "1"  # the inline panel's "move up"
    response = admin_client.post(f"{SNIPPETS}edit/{experiment.pk}/", data)
    assert response.status_code == 302, response.context["form"].errors
    assert arms_of(people) == before


def test_arms_saved_without_a_sort_order_keep_the_order_they_were_created_in():
    from microadjust_cms.experiments.runtime import arm_order

    experiment = make_experiment()  # arms created from code: no sort_order
    arms = list(experiment.arms.all())
    assert [a.name for a in arm_order(reversed(arms))] == ["control", "B", "C"]


# -- each experiment its own flag -------------------------------------------------------------

def test_a_renamed_draft_takes_its_flag_along_and_a_new_experiment_gets_its_own():
    a = make("x")
    a.slug = "y"
    a.save()
    b = make("x", arms=(("control", 1, True), ("B", 1, False)))
    assert (a.flag_name, b.flag_name) == ("microadjust-exp-y", "microadjust-exp-x")
    assert Flag.objects.filter(name__startswith="microadjust-exp-").count() == 2
    transition(a, "start", None)
    transition(b, "start", None)
    transition(a, "pause", None)
    assert Flag.objects.get(name=b.flag_name).everyone is True  # B still enrolls


def test_a_slug_whose_flag_another_experiment_holds_is_a_form_error(admin_client):
    legacy = make("old")
    Experiment.objects.filter(pk=legacy.pk).update(flag_name="microadjust-exp-hero")  # from before renames
    response = admin_client.post(ADD_URL, experiment_post([("control", 1, True), ("B", 1, False)]))
    assert response.status_code == 200
    assert "Another experiment uses the waffle flag microadjust-exp-hero" in response.content.decode()
    assert not Experiment.objects.filter(slug="hero").exists()


# -- the waffle flag follows the status -------------------------------------------------------

def anonymous_request():
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    return request


@pytest.mark.parametrize("traffic", ["100", "40"])
def test_a_draft_leaves_its_flag_off_until_started(admin_client, traffic):
    response = admin_client.post(ADD_URL, experiment_post([("control", 1, True), ("B", 1, False)],
                                                          traffic_percent=traffic))
    assert response.status_code == 302
    experiment = Experiment.objects.get(slug="hero")
    assert not flag_is_active(anonymous_request(), experiment.flag_name)
    transition(experiment, "start", None)
    flag = Flag.objects.get(name=experiment.flag_name)
    if traffic == "100":
        assert flag.everyone is True
    else:
        assert flag.everyone is None and float(flag.percent) == 40.0


# -- QA testers -------------------------------------------------------------------------------

def test_waffle_testing_mode_is_kept_in_waffles_cookie_so_the_tester_stays_qa(hero_page):
    experiment = make_experiment(percent=99)
    set_flag(experiment, testing=True)
    cookie = f"dwft_{experiment.flag_name}"
    client = visitor_client()
    first = client.get("/hero/", {cookie: "1"})
    assert first.cookies[cookie].value == "True"
    client.get("/hero/")  # the tester browses on, without the parameter
    assert not Exposure.objects.exists()
    assert visitor_client().get("/hero/") and Exposure.objects.count() == 1  # a visitor is counted


def test_an_editors_preview_is_not_an_exposure(hero_page):
    make_experiment()
    editor = User.objects.create_user("ed", "ed@example.com", "pw")
    editor.groups.add(Group.objects.get(name="Editors"))
    client = Client()
    client.login(username="ed", password="pw")
    response = client.get(f"/admin/pages/{hero_page.pk}/view_draft/")
    assert response.status_code == 200 and "hero" in variants(response)
    assert not Exposure.objects.exists()
    client.get("/hero/")  # the same editor on the live site is a visitor like any other
    assert Exposure.objects.count() == 1


# -- goals ------------------------------------------------------------------------------------

def test_a_dwell_goal_counts_the_visitors_total_dwell_not_each_chunk():
    experiment = make("dw", goal_type="dwell", goal_name="hero", goal_threshold=10)
    expose(experiment, "B", "chunks")
    expose(experiment, "B", "short")
    for _ in range(3):  # the tracker sends dwell at each flush: 18 s in three chunks
        stored_event(visitor_id="chunks", type="dwell", block_id="hero", value=6000)
    stored_event(visitor_id="short", type="dwell", block_id="hero", value=9999)
    stored_event(visitor_id="short", type="dwell", block_id="elsewhere", value=60000)
    counts = {arm.name: (arm.exposures, arm.conversions) for arm in arm_counts(experiment)}
    assert counts["B"] == (2, 1)


# -- exclusion groups -------------------------------------------------------------------------

def test_finished_experiments_free_their_slice_of_the_group():
    group = ExclusionGroup.objects.create(name="g")
    for slug in ("a", "b"):
        experiment = make(slug, exclusion_group=group, group_share=50)
        transition(experiment, "start", None)
        transition(experiment, "finish", None)
    third = Experiment(name="c", slug="c", goal_name="x", exclusion_group=group, group_share=60)
    third.full_clean()
    third.save()
    running = make("d", exclusion_group=group, group_share=40)
    transition(running, "start", None)
    with pytest.raises(Exception, match="has 0% of its traffic left"):
        Experiment(name="e", slug="e", goal_name="x", exclusion_group=group, group_share=10).full_clean()


# -- templates --------------------------------------------------------------------------------

def render_tag(source, visitor_id, settings_holdout, settings):
    settings.MICROADJUST_EXPERIMENT_HOLDOUT = settings_holdout
    request = RequestFactory().get("/", HTTP_USER_AGENT=DESKTOP_UA)
    visitor = VisitorContext(request)
    visitor.__dict__["visitor_id"] = visitor_id
    request.visitor = visitor
    html = Template("{% load microadjust %}" + source).render(Context({"request": request}))
    return html, visitor


def test_ifvisitor_gives_the_holdout_its_else_branch(settings):
    source = '{% ifvisitor signal="device" value="desktop" %}adjusted{% else %}default{% endifvisitor %}'
    html, visitor = render_tag(source, "0" * 32, 0.9999, settings)
    assert visitor_in_holdout(visitor) and html == "default"
    assert [tuple(a) for a in visitor.adjustments] == [("tag:device.eq", "else", "holdout")]
    html, visitor = render_tag(source, "0" * 32, 0, settings)
    assert html == "adjusted"


def test_ifvisitor_on_an_experiment_arm_records_the_exposure(settings):
    experiment = make_experiment()
    source = ('{% ifvisitor signal="experiment_arm" param="hero-test" value="B" %}B{% else %}'
              'other{% endifvisitor %}')
    for visitor_id in ids(12):
        arm = assign(visitor_for(visitor_id), "hero-test").arm
        html, visitor = render_tag(source, visitor_id, 0, settings)
        assert html == ("B" if arm == "B" else "other")
        assert visitor.exposures == [(experiment.pk, experiment.arms.get(name=arm).pk)]


# -- admin --------------------------------------------------------------------------------------

def test_an_exclusion_group_with_a_running_experiment_cannot_be_deleted(admin_client):
    group = ExclusionGroup.objects.create(name="home")
    experiment = make(exclusion_group=group, group_share=30)
    transition(experiment, "start", None)
    url = f"/admin/snippets/microadjust_cms/exclusiongroup/delete/{group.pk}/"
    response = admin_client.post(url, follow=True)
    assert response.status_code == 200
    assert "cannot be deleted while its experiment" in response.content.decode()
    bulk = admin_client.post("/admin/bulk/microadjust_cms/exclusiongroup/delete/?id=" + str(group.pk), follow=True)
    assert bulk.status_code == 200 and "cannot be deleted while its experiment" in bulk.content.decode()
    assert ExclusionGroup.objects.filter(pk=group.pk).exists()
    transition(experiment, "finish", None)
    assert admin_client.post(url).status_code == 302
    assert not ExclusionGroup.objects.exists()


def test_the_chart_places_days_by_date():
    import datetime
    import re

    from microadjust_cms.experiments.chart import line_chart

    day = datetime.date(2026, 1, 1)
    svg = line_chart({"control": [(day, 0.1), (day + datetime.timedelta(days=1), 0.1),
                                  (day + datetime.timedelta(days=10), 0.1)]}, percent=True, title="t")
    xs = [float(x) for x in re.findall(r'<circle cx="([\d.]+)"', svg)]
    assert xs[1] - xs[0] == pytest.approx((xs[2] - xs[0]) / 10)


# -- the holdout, decided once a request ------------------------------------------------------

def test_a_qa_tester_in_the_holdout_sees_the_whole_page_as_an_enrolled_visitor(demo, settings):
    """Not per-block exceptions: every block, bound or not, as outside the holdout."""
    settings.MICROADJUST_EXPERIMENT_HOLDOUT = 1.0
    experiment = make_experiment(percent=0)
    set_flag(experiment, testing=True)
    desktop = {"name": "desktop", "condition": {"signal": "device", "op": "eq", "value": "desktop"},
               "content": "<p>Desktop</p>"}
    page = publish("qa", [text_block("hero", [arm_variant("hero-test", "B"), desktop]),
                          text_block("plain", [desktop])])
    client = visitor_client()
    assert variants(client.get("/qa/", HTTP_USER_AGENT=DESKTOP_UA)) == {"hero": "default", "plain": "default"}
    tester = variants(client.get("/qa/", {f"dwft_{experiment.flag_name}": "1"}, HTTP_USER_AGENT=DESKTOP_UA))
    assert tester["plain"] == "desktop" and tester["hero"] in ("arm-B", "desktop")
    # Waffle's cookie keeps it QA: the fragment API answers the tester as the page did.
    fragment = client.get("/microadjust/api/fragment/", {"page": page.pk, "block": "plain"},
                          HTTP_USER_AGENT=DESKTOP_UA)
    assert fragment.status_code == 200 and fragment.json()["variant"] == "desktop"
    assert not Exposure.objects.exists()


def test_a_held_out_visitors_ranked_page_is_private_too(demo, settings):
    from microadjust_cms.experiments.runtime import in_holdout
    from project.demo.management.commands.load_demo import recommendations

    from .test_engagement import trained

    assert trained().active
    publish("recs", [recommendations()])
    settings.MICROADJUST_EXPERIMENT_HOLDOUT = 0.5
    for held in (True, False):
        client = visitor_client()
        while in_holdout(client.visitor_id) != held:
            client = visitor_client()
        response = client.get("/recs/")
        assert ('data-ma-variant="ranked"' in response.content.decode()) is not held
        assert "private" in response["Cache-Control"] and "Cookie" in response["Vary"]


# -- the visit's cap counter ------------------------------------------------------------------

@pytest.mark.parametrize("alias", ["default", "redis"])
def test_two_tabs_of_one_visit_both_count_toward_the_visit_cap(settings, alias, request):
    """Both requests read the count before either writes: an increment keeps both."""
    from django.core.cache import caches

    from microadjust_cms.experiments.recording import after_response, visit_adjustments_before

    if alias == "redis":
        request.getfixturevalue("redis_store")  # the real Redis (flushed)
    settings.MICROADJUST_CACHE_ALIAS = alias
    settings.MICROADJUST_ADJUSTMENTS_PER_VISIT = 50
    tabs = [visitor_for("v" * 32), visitor_for("v" * 32)]
    for tab in tabs:
        assert visit_adjustments_before(tab) == 0
        tab.counted_adjustments = 3
    for tab in tabs:
        after_response(tab)
    assert visit_adjustments_before(visitor_for("v" * 32)) == 6
    if alias == "redis":  # the expiry slides with each request of the visit
        from microadjust_cms.conf import get_setting
        from microadjust_cms.visitor.stores.base import visitor_key

        ttl = caches[alias].ttl(visitor_key("v" * 32, "adjusted"))
        assert 0 < ttl <= get_setting("VISIT_IDLE_SECONDS")


# -- after the second review ------------------------------------------------------------------

def test_a_finished_experiment_whose_slice_was_reused_can_still_be_edited(admin_client):
    group = ExclusionGroup.objects.create(name="g")
    first = make("first", exclusion_group=group, group_share=100)
    transition(first, "start", None)
    transition(first, "finish", None)
    second = make("second", exclusion_group=group, group_share=100)  # takes the freed slice
    transition(second, "start", None)
    first.refresh_from_db()
    response = admin_client.post(f"{SNIPPETS}edit/{first.pk}/", edit_post(first, hypothesis="Fixed a typo"))
    assert response.status_code == 302, response.context["form"].errors
    first.refresh_from_db()
    assert first.hypothesis == "Fixed a typo" and first.group_offset == 0.0


@pytest.mark.parametrize("status", ["running", "finished"])
def test_copying_a_started_experiment_makes_an_editable_draft(admin_client, status):
    original = started("orig")
    if status == "finished":
        transition(original, "finish", None)
    page = admin_client.get(f"{SNIPPETS}copy/{original.pk}/")
    assert page.status_code == 200
    form = page.context["form"]
    assert not [name for name, field in form.fields.items() if field.disabled]
    assert not [name for arm in form.formsets["arms"].forms for name, field in arm.fields.items() if field.disabled]
    assert form.initial.get("ends_at") is None and form["ends_at"].value() is None
    data = experiment_post([("control", 50, True), ("B", 25, False), ("C", 25, False)], slug="orig-copy")
    response = admin_client.post(f"{SNIPPETS}add/", data)
    assert response.status_code == 302, response.context["form"].errors
    copy = Experiment.objects.get(slug="orig-copy")
    assert copy.status == "draft" and copy.flag_name == "microadjust-exp-orig-copy"
    assert Experiment.objects.get(pk=original.pk).status == status


def test_an_audience_rule_does_not_take_its_audience_out_of_the_holdout(demo, settings):
    """Staff, groups, authenticated, languages: audiences, not testers. Superusers (waffle's
    default) and listed users are testers, as testing mode is."""
    settings.MICROADJUST_EXPERIMENT_HOLDOUT = 1.0
    experiment = make_experiment(percent=50)
    set_flag(experiment, authenticated=True, superusers=True)
    desktop = {"name": "desktop", "condition": {"signal": "device", "op": "eq", "value": "desktop"},
               "content": "<p>Desktop</p>"}
    publish("plainpage", [text_block("plain", [desktop]), text_block("hero", [arm_variant("hero-test", "B")])])
    User.objects.create_user("member", "m@example.com", "pw")
    User.objects.create_superuser("tester", "t@example.com", "pw")
    member, tester = visitor_client(), visitor_client()
    member.login(username="member", password="pw")
    tester.login(username="tester", password="pw")
    assert variants(member.get("/plainpage/", HTTP_USER_AGENT=DESKTOP_UA)) == {"plain": "default", "hero": "default"}
    assert variants(tester.get("/plainpage/", HTTP_USER_AGENT=DESKTOP_UA))["plain"] == "desktop"
    assert not Exposure.objects.exists()


def test_a_draft_renamed_onto_a_sites_flag_links_it_and_drops_its_own():
    Flag.objects.create(name="microadjust-exp-b", note="the site's own", everyone=False)
    draft = make("a")
    assert Flag.objects.filter(name="microadjust-exp-a").exists()
    draft.slug = "b"
    draft.save()
    assert draft.flag_name == "microadjust-exp-b"
    assert list(Flag.objects.values_list("name", flat=True)) == ["microadjust-exp-b"]
    assert Flag.objects.get().note == "the site's own"


def test_a_started_experiments_priority_is_fixed(admin_client):
    experiment = started()
    response = admin_client.post(f"{SNIPPETS}edit/{experiment.pk}/", edit_post(experiment, priority="9"))
    assert response.status_code == 302, response.context["form"].errors
    experiment.refresh_from_db()
    assert experiment.priority == 0


def test_daily_rows_are_days_of_the_sites_time_zone_whoever_reads_them(settings):
    """Wagtail activates each editor's own time zone; the daily series must not follow it."""
    import datetime

    from django.utils import timezone

    from microadjust_cms.experiments.report import daily_series

    settings.TIME_ZONE = "UTC"
    experiment = make("tz")
    expose(experiment, "control", "late", datetime.datetime(2026, 1, 1, 20, 0, tzinfo=datetime.UTC))
    with timezone.override("Asia/Tokyo"):  # already 2 January there
        days = [point.day for point in daily_series(experiment)]
    assert days == [datetime.date(2026, 1, 1)]
