"""The admin's "Auto-optimize" page: posteriors and shares per context, and the reset button."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from microadjust_cms.behaviour import BehaviourUpdate
from microadjust_cms.visitor.stores import get_profile_store

from .test_admin_jobs import menu_urls

pytestmark = pytest.mark.django_db
URL = "/admin/microadjust/optimize/"


def teach(block, counters):
    get_profile_store().record_events("a" * 32, BehaviourUpdate(counters={block: counters}), now=1.0)


def test_each_context_shows_its_posterior_chance_best_and_share(demo, admin_client, admin_user):
    get_profile_store().reset_counters("tides-1")
    teach("tides-1", {"n|cluster-1|video": 150, "s|cluster-1|video": 60,
                      "n|cluster-1|simpler": 150, "s|cluster-1|simpler": 15,
                      "n|cluster-1|default": 100, "s|cluster-1|default": 10,
                      "n|none|simpler": 3, "s|none|simpler": 1})
    response = admin_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-ma-optimized-block="tides-1"' in html and 'data-ma-optimized-block="tides-2"' in html
    section = html.split('data-ma-optimized-block="tides-1"')[1].split("data-ma-optimized-block")[0]
    assert 'data-ma-context="cluster-1"' in section and 'data-ma-context="none"' in section
    assert "data-ma-stopped" in section  # video dominates cluster-1 (40% vs 10%)
    video = re.search(r'data-ma-candidate="video">(.*?)</tr>', section, re.S).group(1)
    assert re.search(r"data-ma-best>1\.00<", video)
    assert re.search(r"data-ma-share>38 %<", video)  # 150 of 400 trials
    tides_2 = html.split('data-ma-optimized-block="tides-2"')[1]
    assert "data-ma-no-trials" in tides_2
    assert URL in menu_urls(admin_user)


def test_reset_forgets_a_blocks_counters_and_needs_the_run_permission(demo, admin_client, client):
    teach("tides-2", {"n|all|video": 5})
    response = admin_client.post(URL + "tides-2/reset/")
    assert response.status_code == 302
    assert get_profile_store().load_counters(["tides-2"]) == {"tides-2": {}}
    assert admin_client.post(URL + "no-such-block/reset/").status_code == 302  # said, not a 500
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="access_admin"),
                                Permission.objects.get(codename="view_learningjob"))
    client.force_login(viewer)
    assert client.get(URL).status_code == 200
    assert "Reset its learning" not in client.get(URL).content.decode()
    teach("tides-2", {"n|all|video": 5})
    assert client.post(URL + "tides-2/reset/").status_code in (302, 403)
    assert get_profile_store().load_counters(["tides-2"]) == {"tides-2": {"n|all|video": 5}}
