"""Erasure: a visitor's events, exposures and profile go, and the rollups stay exact."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from microadjust_cms.analytics import rollups
from microadjust_cms.analytics.models import BlockRollup
from microadjust_cms.experiments.models import Exposure
from microadjust_cms.tracking.models import Event
from microadjust_cms.visitor.stores import get_profile_store

pytestmark = pytest.mark.django_db
GONE, STAYS = "a" * 32, "b" * 32


def impressions(visitor: str, count: int, days_ago: int = 1) -> list[Event]:
    when = timezone.now() - timedelta(days=days_ago)
    return [Event(visitor_id=visitor, type="impression", occurred_at=when, page_id=3, path="/",
                  block_id="hero", variant="v1", device="desktop") for _ in range(count)]


def all_devices_impressions() -> int:
    return sum(BlockRollup.objects.filter(period="day", device="all").values_list("impressions", flat=True))


def test_forget_deletes_events_exposures_and_profile_and_rebuilds_rollups(demo):
    from .test_experiment_report import make  # an experiment with arms

    Event.objects.bulk_create(impressions(GONE, 3, days_ago=20) + impressions(STAYS, 2, days_ago=20)
                              + impressions(GONE, 1))
    rollups.refresh()
    assert all_devices_impressions() == 6
    experiment = make()
    Exposure.objects.create(visitor_id=GONE, experiment=experiment, arm=experiment.arms.first())
    Exposure.objects.create(visitor_id=STAYS, experiment=experiment, arm=experiment.arms.first())
    store = get_profile_store()
    store.load(GONE, "3", record_view=True, now=timezone.now().timestamp())
    assert store.load(GONE, "3", record_view=False, now=timezone.now().timestamp()).visits == 1

    out = io.StringIO()
    call_command("microadjust_forget", GONE, stdout=out)
    assert "4 events and 1 experiment exposures deleted" in out.getvalue()
    assert not Event.objects.filter(visitor_id=GONE).exists()
    assert Event.objects.filter(visitor_id=STAYS).count() == 2
    assert list(Exposure.objects.values_list("visitor_id", flat=True)) == [STAYS]
    assert store.load(GONE, "3", record_view=False, now=timezone.now().timestamp()).visits == 0
    # 20 days back too: the erasure told the rollups where to start
    assert all_devices_impressions() == 2


def test_a_user_is_forgotten_by_username(django_user_model):
    user = django_user_model.objects.create_user("ada", password="pw")
    Event.objects.bulk_create(impressions(f"u{user.pk}", 2))
    out = io.StringIO()
    call_command("microadjust_forget", "ada", stdout=out)
    assert f"Forgot visitor u{user.pk}: 2 events" in out.getvalue()
    assert not Event.objects.exists()


@pytest.mark.parametrize("value", ["nobody-here", "A" * 32, "u12x", "1" * 31, "'; DROP TABLE"])
def test_neither_a_visitor_nor_a_user_is_a_clear_error(value):
    Event.objects.bulk_create(impressions(STAYS, 1))
    with pytest.raises(CommandError, match="neither a visitor id"):
        call_command("microadjust_forget", value, stdout=io.StringIO())
    assert Event.objects.count() == 1


def test_the_admin_form_forgets_and_refuses_bad_input(client, django_user_model):
    from django.contrib.auth.models import Permission

    Event.objects.bulk_create(impressions(GONE, 2) + impressions(STAYS, 1))
    url = "/admin/microadjust/forget/"
    editor = django_user_model.objects.create_user("ed", password="pw")
    editor.user_permissions.add(*Permission.objects.filter(codename="access_admin"))
    client.force_login(editor)
    assert client.get(url).status_code in (302, 403)  # may not delete events
    editor.user_permissions.add(Permission.objects.get(codename="delete_event"))
    editor = django_user_model.objects.get(pk=editor.pk)
    client.force_login(editor)
    assert client.get(url).status_code == 200
    response = client.post(url, {"visitor": "not anyone"})
    assert response.status_code == 200 and "neither a visitor id" in response.content.decode()
    assert Event.objects.count() == 3
    response = client.post(url, {"visitor": GONE}, follow=True)
    assert "2 events and 0 experiment exposures deleted" in response.content.decode()
    assert list(Event.objects.values_list("visitor_id", flat=True)) == [STAYS]


def test_batches_waiting_in_the_stream_are_loaded_then_forgotten(stream_sink):
    """With the stream sink, events collected before the erasure but not yet loaded would be
    stored after it: the erasure loads them first."""
    from microadjust_cms.tracking.schema import validate_batch
    from microadjust_cms.tracking.sinks import Batch

    now = timezone.now()
    rows = validate_batch({"v": 1, "events": [{"type": "pageview", "t": int(now.timestamp() * 1000),
                                               "path": "/"}]}, now=now, max_events=10)
    stream_sink.write(Batch(GONE, rows, received_at=now))
    stream_sink.write(Batch(STAYS, rows, received_at=now))
    assert stream_sink.backlog()["pending_batches"] == 2
    out = io.StringIO()
    call_command("microadjust_forget", GONE, stdout=out)
    assert "1 events and 0 experiment exposures deleted" in out.getvalue()
    assert "(2 events waiting in the stream loaded first)" in out.getvalue()
    assert stream_sink.backlog()["pending_batches"] == 0
    assert list(Event.objects.values_list("visitor_id", flat=True)) == [STAYS]
