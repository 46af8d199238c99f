"""Block events carry the block's position ("pos"): stored when valid, the batch refused when not."""

import json

import pytest
from django.utils import timezone

from microadjust_cms.tracking.models import Event

from .helpers import visitor_client

pytestmark = pytest.mark.django_db
URL = "/microadjust/collect/"


def post(client, events):
    return client.post(URL, json.dumps({"v": 1, "events": events}), content_type="application/json",
                       HTTP_ORIGIN="http://testserver")


def impression(**fields):
    return {"type": "impression", "t": int(timezone.now().timestamp() * 1000), "block": "recs-1",
            "variant": "ranked", "kind": "video", **fields}


def test_position_is_stored_with_block_events():
    client = visitor_client()
    response = post(client, [impression(pos=0), impression(pos=7),
                             {**impression(pos=3), "type": "click"}, impression()])
    assert response.status_code == 204
    assert list(Event.objects.order_by("pk").values_list("type", "position")) == [
        ("impression", 0), ("impression", 7), ("click", 3), ("impression", None)]


@pytest.mark.parametrize("bad", [-1, 10_000, 1.5, "3", True, None])
def test_a_bad_position_is_a_400_and_nothing_is_stored(bad):
    response = post(visitor_client(), [impression(pos=1), impression(pos=bad)])
    assert response.status_code == 400
    assert any(error.startswith("events[1].pos:") for error in response.json()["detail"]), response.json()
    assert not Event.objects.exists()


def test_page_events_take_no_position():
    response = post(visitor_client(), [{"type": "pageview", "t": int(timezone.now().timestamp() * 1000),
                                        "pos": 1}])
    assert response.status_code == 400
    assert "events[0].pos: is not a field of a pageview event" in response.json()["detail"]
