"""Monthly partitions of the event table: real on PostgreSQL (CI's first pass), nothing to do on
SQLite (the other passes and the demo), where retention deletes rows as before."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from microadjust_cms.jobs.retention import purge_events
from microadjust_cms.tracking.event_store import store_events
from microadjust_cms.tracking.models import Event
from microadjust_cms.tracking.partitions import (
    DEFAULT_PARTITION,
    add_months,
    create_partition,
    drop_partitions_before,
    ensure_partitions,
    is_partitioned,
    month_start,
    monthly_partitions,
    partition_name,
)

pytestmark = pytest.mark.django_db
POSTGRES = connection.vendor == "postgresql"


def add_event(when: datetime, name: str) -> None:
    store_events("v" * 32, [{"type": "conversion", "occurred_at": when, "page_id": None, "path": "",
                             "previous_path": "", "block_id": "", "variant": "", "value": None,
                             "name": name, "content_type": "", "tags": "", "position": None,
                             "segments": ""}])


def where(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM microadjust_cms_event WHERE name = %s",
                       [name])
        return cursor.fetchone()[0]


def test_add_months_crosses_years():
    assert add_months(month_start(datetime(2026, 11, 30)), 3).isoformat() == "2027-02-01"
    assert add_months(month_start(datetime(2027, 1, 5)), -1).isoformat() == "2026-12-01"


def test_the_table_is_partitioned_by_month_on_postgresql_only():
    assert is_partitioned() is POSTGRES
    if not POSTGRES:
        assert ensure_partitions() == [] and drop_partitions_before(timezone.now()) == ([], 0)
        return
    months = monthly_partitions()
    this_month = month_start(timezone.now().astimezone(UTC))
    assert this_month in months and add_months(this_month, 1) in months
    add_event(timezone.now(), "now")
    assert where("now") == partition_name(this_month)


def test_partitions_are_created_ahead_and_rows_land_in_their_month():
    future = timezone.now() + timedelta(days=400)
    created = ensure_partitions(future, months_ahead=2)
    if not POSTGRES:
        assert created == []
        return
    month = month_start(future.astimezone(UTC))
    assert [partition_name(add_months(month, k)) for k in range(-1, 3)] == created
    assert ensure_partitions(future, months_ahead=2) == []  # idempotent
    add_event(future, "future")
    assert where("future") == partition_name(month)


def test_rows_stranded_in_the_default_partition_move_to_their_new_month():
    far = datetime(2031, 5, 17, 12, tzinfo=UTC)
    add_event(far, "stranded")
    if not POSTGRES:
        assert Event.objects.filter(name="stranded").exists()
        return
    assert where("stranded") == DEFAULT_PARTITION
    create_partition(month_start(far))
    assert where("stranded") == partition_name(month_start(far))
    assert Event.objects.filter(name="stranded").count() == 1


def test_retention_drops_whole_months_and_deletes_the_rest():
    now = timezone.now()
    old = now - timedelta(days=500)
    if POSTGRES:
        create_partition(month_start(old.astimezone(UTC)))
    add_event(old, "old-1")
    add_event(old + timedelta(hours=1), "old-2")
    add_event(now - timedelta(days=181), "edge")  # before the cutoff, in a month it shares
    add_event(now, "kept")
    assert purge_events(days=180, now=now) == 3
    assert list(Event.objects.values_list("name", flat=True)) == ["kept"]
    if POSTGRES:
        assert month_start(old.astimezone(UTC)) not in monthly_partitions()
        assert month_start(now.astimezone(UTC)) in monthly_partitions()
