"""Reports → Personalization: the variants' figures from the rollups, filtered, sorted,
exported, and nothing shown for groups under the privacy threshold."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from microadjust_cms.analytics import rollups
from microadjust_cms.tracking.models import Event

pytestmark = pytest.mark.django_db
URL = "/admin/microadjust/reports/personalization/"


def traffic(block: str, variant: str, people: int, clicks: int, device: str = "desktop", page_id=None):
    now = timezone.now() - timedelta(hours=1)
    common = {"page_id": page_id, "path": "/", "block_id": block, "variant": variant, "device": device}
    visitors = [f"{block[:4]}{variant}{device[:3]}{i}".ljust(32, "0")[:32] for i in range(people)]
    return ([Event(type="impression", occurred_at=now, visitor_id=v, **common) for v in visitors]
            + [Event(type="click", occurred_at=now, visitor_id=v, **common) for v in visitors[:clicks]])


@pytest.fixture
def figures_ready(demo):
    page_id = demo["home"].pk
    Event.objects.bulk_create(traffic("hero", "v1", 40, 10, page_id=page_id)
                              + traffic("hero", "default", 30, 3, page_id=page_id)
                              + traffic("hero", "v1", 12, 6, device="mobile", page_id=page_id)
                              + traffic("offer", "v2", 4, 1, page_id=page_id))
    rollups.refresh()
    return page_id


@pytest.fixture
def boss(client, django_user_model, figures_ready):
    """A superuser made after the demo (``load_demo`` makes its own "admin")."""
    client.force_login(django_user_model.objects.create_superuser("boss", "b@example.com", "pw"))
    return client


def table_rows(html: str) -> list[str]:
    listing = html.split('<table class="listing', 1)[1]  # not the keyboard shortcuts' table
    body = listing.split("<tbody", 1)[1].split("</tbody>", 1)[0]
    return [row for row in body.split("<tr")[1:]]


def test_the_report_lists_variants_most_impressions_first(boss):
    response = boss.get(URL)
    assert response.status_code == 200
    rows = table_rows(response.content.decode())
    assert ["v1" in rows[0], "default" in rows[1]] == [True, True]
    assert "52" in rows[0] and "16" in rows[0]  # desktop and mobile: 52 impressions, 16 clicks
    assert "30.8%" in rows[0]  # CTR 16 / 52
    offer = next(row for row in rows if "offer" in row)
    assert "fewer than 10 visitors" in offer and ">1<" not in offer.replace(" ", "")


def test_device_filter_and_sorting(boss):
    mobile = table_rows(boss.get(URL, {"device": "mobile"}).content.decode())
    assert len(mobile) == 1 and "12" in mobile[0] and "50.0%" in mobile[0]
    by_ctr = table_rows(boss.get(URL, {"ordering": "ctr"}).content.decode())
    assert "default" in by_ctr[0]  # 10 % before 30.8 %
    by_block = table_rows(boss.get(URL, {"ordering": "-block_id"}).content.decode())
    assert "offer" in by_block[0]


def test_a_bad_filter_value_is_a_form_error_not_a_500(boss):
    response = boss.get(URL, {"date_from": "not a date", "device": "toaster"})
    assert response.status_code == 200
    assert "Enter a valid date" in response.content.decode()


def test_csv_export_has_the_figures_and_hides_small_groups(boss):
    response = boss.get(URL, {"export": "csv"})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="personalization-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    hero = next(r for r in rows if r["Block"] == "hero" and r["Variant"] == "v1")
    assert (hero["Impressions"], hero["Clicks"]) == ("52", "16")
    assert float(hero["CTR interval low"]) < float(hero["CTR"]) < float(hero["CTR interval high"])
    offer = next(r for r in rows if r["Block"] == "offer")
    assert offer["Impressions"] == "" and offer["Clicks"] == ""


def test_xlsx_export(boss):
    response = boss.get(URL, {"export": "xlsx"})
    assert response.status_code == 200
    assert "spreadsheetml" in response["Content-Type"]


def test_editors_see_it_in_the_reports_menu_and_others_do_not(client, django_user_model, figures_ready):
    editor = django_user_model.objects.create_user("ed", password="pw")
    editor.groups.add(Group.objects.get(name="Editors"))
    client.force_login(editor)
    assert client.get(URL).status_code == 200
    assert URL in client.get("/admin/").content.decode()
    nobody = django_user_model.objects.create_user("no", password="pw")
    nobody.user_permissions.add(*Permission.objects.filter(codename="access_admin"))
    client.force_login(nobody)
    assert client.get(URL).status_code in (302, 403)


def page_views(page_id: int, people: int, reached: dict[int, int]) -> list[Event]:
    now = timezone.now() - timedelta(hours=1)
    ids = [f"pv{i}".ljust(32, "0") for i in range(people)]
    common = {"page_id": page_id, "path": "/", "device": "desktop"}
    events = [Event(type="pageview", occurred_at=now, visitor_id=v, **common) for v in ids]
    for depth, count in reached.items():
        events += [Event(type="scroll", occurred_at=now, visitor_id=v, value=depth, **common) for v in ids[:count]]
    return events


def test_the_page_report_draws_the_dropoff_and_ranks_blocks(boss, figures_ready):
    Event.objects.bulk_create(page_views(figures_ready, 20, {25: 20, 50: 15, 75: 10, 90: 4, 100: 2}))
    dwell_common = {"page_id": figures_ready, "path": "/", "device": "desktop", "type": "dwell"}
    now = timezone.now() - timedelta(hours=1)
    # offer (hidden: 4 visitors) aside, hero is the only block shown; 25 long dwells on it
    Event.objects.bulk_create([Event(occurred_at=now, visitor_id=f"d{i}".ljust(32, "0"), block_id="hero",
                                     variant="v1", value=15_000, **dwell_common) for i in range(25)])
    rollups.refresh()
    response = boss.get(f"{URL}page/{figures_ready}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'role="img"' in html and "Share of page views reaching each scroll depth" in html
    dropoff = html.split("data-ma-dropoff>", 1)[1].split("</table>", 1)[0]
    assert "<td>20</td>" in dropoff and "<td>75%</td>" in dropoff and "<td>10%</td>" in dropoff
    sections = html.split("data-ma-block-figures=")[1:]
    assert sections[0].startswith('"hero"') and sections[1].startswith('"offer"')
    assert "engagement 30%" in " ".join(sections[0].split())  # 25 engaged dwells / 82 impressions
    assert "CTR of each variant of hero" in sections[0]
    assert "Fewer than 10 visitors" in sections[1]
    # The main report links each page to this one.
    assert f"{URL}page/{figures_ready}/" in boss.get(URL).content.decode()


def test_the_page_report_refuses_what_it_should(boss, client, django_user_model, figures_ready):
    assert boss.get(f"{URL}page/999999/").status_code == 404
    response = boss.get(f"{URL}page/{figures_ready}/", {"date_from": "yesterday-ish"})
    assert response.status_code == 200  # a bad date: the default range, not a 500
    nobody = django_user_model.objects.create_user("nobody", password="pw")
    nobody.user_permissions.add(*Permission.objects.filter(codename="access_admin"))
    client.force_login(nobody)
    assert client.get(f"{URL}page/{figures_ready}/").status_code in (302, 403)


def test_segment_filter_shows_the_figures_of_the_visitors_stamped_with_it(boss, figures_ready):
    from microadjust_cms.segments.models import Segment

    Segment.objects.create(name="Deal hunters", slug="deal", condition={
        "signal": "device", "op": "eq", "value": "mobile"})
    stamped = traffic("hero", "v2", 15, 5, page_id=figures_ready)
    for e in stamped:
        e.segments = "deal"
    Event.objects.bulk_create(stamped)
    rollups.refresh()
    html = boss.get(URL).content.decode()
    assert 'value="deal"' in html and "Deal hunters" in html  # offered in the filter
    rows = table_rows(boss.get(URL, {"segment": "deal"}).content.decode())
    assert len(rows) == 1 and "v2" in rows[0] and "15" in rows[0] and "33.3%" in rows[0]
    assert len(table_rows(boss.get(URL).content.decode())) == 4  # everyone: all four variants
    forged = boss.get(URL, {"segment": "no-such-segment"})
    assert forged.status_code == 200 and "Select a valid choice" in forged.content.decode()
    page = boss.get(f"{URL}page/{figures_ready}/", {"segment": "deal"}).content.decode()
    sections = page.split("data-ma-block-figures=")[1:]
    assert len(sections) == 1 and 'data-ma-variant-figures="v2"' in sections[0]


def test_the_page_report_shows_the_last_hours(boss, figures_ready):
    html = boss.get(f"{URL}page/{figures_ready}/").content.decode()
    assert "The last 48 hours, hour by hour" in html
    assert "Block impressions on this page, hour by hour" in html  # the chart's title
    hours = html.split("data-ma-hours>", 1)[1].split("</table>", 1)[0]
    assert hours.count("<tr data-ma-hour=") == 48
    an_hour_ago = timezone.localtime(timezone.now() - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    row = hours.split(f'data-ma-hour="{an_hour_ago.isoformat()}"', 1)[1].split("</tr>", 1)[0]
    assert "<td>86</td>" in row and "<td>20</td>" in row  # every block's impressions and clicks
