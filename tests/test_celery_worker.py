"""End to end through a real Celery worker process on the Redis broker (not eager)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from microadjust_cms.jobs.models import LearningJob
from microadjust_cms.tasks import purge_old_events
from microadjust_cms.tracking.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


def test_purge_queued_with_delay_runs_on_the_worker(live_celery):
    now = timezone.now()
    Event.objects.bulk_create(
        [Event(visitor_id=f"old{i}", type="pageview", occurred_at=now - timedelta(days=200)) for i in range(5)]
        + [Event(visitor_id="new", type="click", occurred_at=now - timedelta(days=1))])
    job = LearningJob.objects.create(kind="purge")
    result = purge_old_events.delay(job_id=job.pk)
    job = live_celery.wait_for_job(job.pk)
    assert (job.status, job.message) == (LearningJob.Status.DONE, "Deleted 5 events older than 180 days.")
    assert job.celery_task_id == result.id
    assert (job.progress_done, job.progress_total) == (1, 1)
    assert list(Event.objects.values_list("visitor_id", flat=True)) == ["new"]
    assert f"Task microadjust_cms.purge_events[{result.id}] succeeded" in live_celery.log()


def test_a_scheduled_run_without_a_row_records_its_own(live_celery):
    Event.objects.create(visitor_id="old", type="pageview", occurred_at=timezone.now() - timedelta(days=30))
    result = purge_old_events.delay(days=7)  # as beat sends it, plus an option
    job = live_celery.wait_for_job(_row_for(result.id, live_celery).pk)
    assert (job.kind, job.status, job.queued_by) == ("purge", LearningJob.Status.DONE, None)
    assert job.message == "Deleted 1 events older than 7 days."
    assert not Event.objects.exists()


def test_recluster_on_the_worker_events_in_clusters_out_profiles_updated(live_celery, redis_store):
    """The issue's end-to-end run: planted behaviour in the event table, ``recluster`` queued
    with ``.delay`` and run by the worker process, clusters in the database, and every visitor's
    cluster in the real Redis profile store (which the worker wrote, not this process)."""
    from microadjust_cms.learning.models import Cluster, ClusterRun
    from microadjust_cms.tasks import recluster
    from tests.test_recluster import TYPES, planted_events, slugs_by_type

    planted_events(per_type=20, seed=3)
    job = LearningJob.objects.create(kind="recluster")
    recluster.delay(job_id=job.pk, k=3)
    job = live_celery.wait_for_job(job.pk, timeout=120)
    assert job.status == LearningJob.Status.DONE, job.message
    run = ClusterRun.objects.get()
    assert (run.visitors, run.k) == (60, 3)
    assert Cluster.objects.filter(active=True).count() == 3
    found = slugs_by_type(redis_store, per_type=20)  # one cluster a type, three different ones
    assert set(found) == set(TYPES)
    assert set(found.values()) == set(Cluster.objects.values_list("slug", flat=True))


def _row_for(task_id, worker):
    """The row a task creates for itself, once the worker made it."""
    import time

    deadline = time.monotonic() + 60
    while not (row := LearningJob.objects.filter(celery_task_id=task_id).first()):
        worker.check_alive()
        assert time.monotonic() < deadline, worker.log()[-4000:]
        time.sleep(0.1)
    return row
