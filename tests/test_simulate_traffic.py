"""simulate_traffic: synthetic visitors post through the real collect endpoint, and their hidden
types show in the stored events the way the learning jobs need them to."""

import io
import json
import re
import time
from collections import defaultdict

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Avg, Count, Max

from microadjust_cms.tracking.models import Event
from microadjust_cms.visitor.stores import get_profile_store
from project.demo.page_reader import read_page

ACCEPTED_RE = re.compile(r"Events accepted: (\d+) in (\d+) batches; refused: 0\.")


def simulate(tmp_path, *args: str) -> tuple[str, dict[str, str]]:
    out = io.StringIO()
    truth = tmp_path / "truth.json"
    call_command("simulate_traffic", "--visitors", "30", "--days", "5", "--no-progress",
                 "--path", "/clips/", "--truth", str(truth), *args, stdout=out)
    return out.getvalue(), json.loads(truth.read_text())


def accepted(output: str) -> int:
    match = ACCEPTED_RE.search(output)
    assert match, output
    return int(match.group(1))


@pytest.fixture
def clips_site(settings, demo):
    """The demo plus a page of video and deal blocks (see tests/urls_with_clips.py)."""
    settings.ROOT_URLCONF = "tests.urls_with_clips"
    return demo


@pytest.fixture
def run(clips_site, tmp_path):
    output, truth = simulate(tmp_path)
    return output, truth


def by_type(truth: dict[str, str]) -> dict[str, list[str]]:
    groups = defaultdict(list)
    for visitor_id, hidden in truth.items():
        groups[hidden].append(visitor_id)
    return groups


def test_every_event_is_stored_through_the_endpoint(run):
    output, truth = run
    stored = Event.objects.count()
    assert stored == accepted(output) > 1000
    assert set(Event.objects.values_list("visitor_id", flat=True).distinct()) == set(truth)
    assert len(truth) == 30
    assert set(Event.objects.values_list("type", flat=True).distinct()) == {
        "pageview", "impression", "dwell", "scroll", "click", "abandon", "conversion"}
    # Content types come from the rendered pages, every one of them.
    assert {"article", "news", "video", "deal"} <= set(
        Event.objects.values_list("content_type", flat=True).distinct())
    # Block events carry the position the tracker would send.
    assert not Event.objects.exclude(block_id="").filter(position__isnull=True).exists()
    # ... and the segment stamp of the page they came from: returning visitors are "loyal".
    stamps = set(Event.objects.exclude(segments="").values_list("segments", flat=True).distinct())
    assert "loyal-readers" in {slug for stamp in stamps for slug in stamp.split()}


def test_visits_are_spread_over_the_simulated_days(run):
    _output, truth = run
    groups = by_type(truth)
    days = Event.objects.filter(visitor_id__in=groups["desktop_deep_reader"]).values(
        "visitor_id").annotate(first=Count("occurred_at__date", distinct=True))
    assert max(row["first"] for row in days) >= 3
    span = Event.objects.order_by("occurred_at")
    assert (span.last().occurred_at - span.first().occurred_at).days >= 3
    # Profiles count visits in travelled time: readers come back, skimmers rarely do.
    store = get_profile_store()

    def mean_visits(hidden: str) -> float:
        ids = groups[hidden]
        return sum(store.load(v, None, record_view=False, now=time.time()).visits for v in ids) / len(ids)

    assert mean_visits("desktop_deep_reader") > 2 * mean_visits("skimmer")
    assert mean_visits("skimmer") >= 1


def test_hidden_types_differ_the_way_they_should(run):
    _output, truth = run
    groups = by_type(truth)
    assert set(groups) == {"mobile_video_fan", "desktop_deep_reader", "skimmer", "deal_hunter"}
    fans = Event.objects.filter(visitor_id__in=groups["mobile_video_fan"])
    assert set(fans.values_list("device", flat=True).distinct()) == {"mobile"}
    readers = Event.objects.filter(visitor_id__in=groups["desktop_deep_reader"])
    assert set(readers.values_list("device", flat=True).distinct()) == {"desktop"}
    skimmers = Event.objects.filter(visitor_id__in=groups["skimmer"])

    def mean_dwell(events):
        return events.filter(type="dwell").aggregate(v=Avg("value"))["v"]

    def mean_scroll(events):
        deepest = events.filter(type="scroll").values("visitor_id", "occurred_at__date", "path")
        rows = deepest.annotate(depth=Max("value"))
        return sum(r["depth"] for r in rows) / max(len(rows), 1)

    assert mean_dwell(readers) > 3 * mean_dwell(skimmers)
    assert mean_scroll(readers) > mean_scroll(skimmers) + 20
    assert skimmers.filter(type="abandon").count() / skimmers.filter(type="impression").count() > (
        readers.filter(type="abandon").count() / readers.filter(type="impression").count())

    def video_click_rate(ids):
        videos = Event.objects.filter(visitor_id__in=ids, content_type="video")
        return videos.filter(type="click").count() / max(videos.filter(type="impression").count(), 1)

    others = [v for hidden, ids in groups.items() if hidden != "mobile_video_fan" for v in ids]
    assert video_click_rate(groups["mobile_video_fan"]) > 2 * video_click_rate(others)

    def conversions_per_visitor(ids):
        return Event.objects.filter(visitor_id__in=ids, type="conversion").count() / len(ids)

    rest = [v for hidden, ids in groups.items() if hidden != "deal_hunter" for v in ids]
    assert conversions_per_visitor(groups["deal_hunter"]) > 3 * conversions_per_visitor(rest)


def summary_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if not line.startswith("Visitors identified")]


def test_the_same_seed_gives_the_same_counts(clips_site, tmp_path):
    first, _ = simulate(tmp_path, "--seed", "11")
    count = Event.objects.count()
    second, _ = simulate(tmp_path, "--seed", "11")
    assert summary_lines(first) == summary_lines(second)
    assert Event.objects.count() == 2 * count
    other, _ = simulate(tmp_path, "--seed", "12")
    assert summary_lines(other) != summary_lines(first)


@pytest.mark.parametrize("args, message", [
    (["--visitors", "0"], "--visitors must be at least 1"),
    (["--days", "-3"], "--days must be at least 1"),
    (["--days", "0"], "--days must be at least 1"),
    (["--path", "clips/"], "starting with /"),
])
def test_bad_options_are_refused(demo, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("simulate_traffic", *args, "--no-progress", stdout=io.StringIO())
    assert not Event.objects.exists()


def test_without_pages_it_says_what_to_do(db):
    with pytest.raises(CommandError, match="load_demo"):
        call_command("simulate_traffic", "--no-progress", stdout=io.StringIO())


def test_a_rate_limit_stops_the_run_and_names_the_setting(clips_site, settings, tmp_path):
    settings.MICROADJUST_COLLECT_RATE = "2/h"
    with pytest.raises(CommandError, match="MICROADJUST_COLLECT_RATE"):
        simulate(tmp_path)


def test_consent_required_visitors_consent_and_are_stored(clips_site, settings, tmp_path):
    settings.MICROADJUST_REQUIRE_CONSENT = True
    output, truth = simulate(tmp_path, "--visitors", "5")
    assert Event.objects.count() == accepted(output) > 0


@pytest.mark.redis
def test_on_redis_profiles_and_events_match(clips_site, redis_store, tmp_path):
    output, truth = simulate(tmp_path)
    assert Event.objects.count() == accepted(output)
    groups = by_type(truth)
    visits = [redis_store.load(v, None, record_view=False, now=time.time()).visits
              for v in groups["desktop_deep_reader"]]
    assert max(visits) >= 3


def test_the_page_reader_finds_blocks_links_goals_and_the_tracker_settings():
    html = """<main><div data-ma-block="a" data-ma-variant="default" data-ma-kind="video"
      data-ma-tags="sport tennis"><p>Intro<br><img src="x.png" alt=""><a href="#p"> Play
      <b>now</b> </a></p><button aria-label="Save">*</button></div>
      <div data-ma-block="b" data-ma-variant="v2"><form data-ma-goal="signup"></form>
      <div><div data-ma-block="c" data-ma-variant="default" data-ma-pos="7"></div></div><a href="#">x</a>
      <div data-ma-block="d" data-ma-pos="x"></div></div>
      <a data-ma-goal="purchase" href="#buy">Buy</a></main>
      <script id="microadjust-config" type="application/json">{"page": 3, "path": "/\\u003Cx"}</script>"""
    page = read_page(html)
    assert [(b.block_id, b.variant, b.kind, b.tags) for b in page.blocks] == [
        ("a", "default", "video", "sport tennis"), ("b", "v2", "", ""), ("c", "default", "", ""),
        ("d", "", "", "")]
    # as the tracker: data-ma-pos when valid, else the index among tracked blocks
    assert [b.position for b in page.blocks] == [0, 1, 7, 3]
    assert page.blocks[0].links == ["Play now", "Save"]
    assert page.blocks[1].links == ["x"] and page.blocks[1].goals == ["signup"]
    assert page.blocks[2].links == []
    assert page.goals == ["purchase"]
    assert page.config == {"page": 3, "path": "/<x"}
    assert read_page("<p>no tracker</p>").config is None
