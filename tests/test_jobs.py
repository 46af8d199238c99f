"""The learning job path: run_job's statuses, locks, progress, retries and the beat schedule."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from microadjust_cms.jobs import runner as jobs
from microadjust_cms.jobs.beat import beat_schedule
from microadjust_cms.jobs.locks import RedisJobLock, job_lock
from microadjust_cms.jobs.models import LearningJob
from microadjust_cms.tasks import purge_old_events, recluster
from microadjust_cms.tracking.models import Event

from . import job_standins

pytestmark = pytest.mark.django_db
Status = LearningJob.Status


def make_events(old: int, new: int) -> None:
    now = timezone.now()
    Event.objects.bulk_create(
        [Event(visitor_id=f"v{i}", type="pageview", occurred_at=now - timedelta(days=400)) for i in range(old)]
        + [Event(visitor_id=f"n{i}", type="pageview", occurred_at=now) for i in range(new)])


@pytest.fixture(autouse=True)
def _fresh_standins():
    job_standins.calls.clear()
    job_standins.failures_left = 0


@pytest.fixture
def standin(monkeypatch):
    def point(kind: str, name: str) -> None:
        monkeypatch.setitem(jobs.JOBS, kind, f"tests.job_standins.{name}")
    return point


@pytest.fixture(params=["locmem", "redis"])
def lock_cache(request, settings):
    """Each lock test runs on both lock kinds: cache.add (locmem) and the Redis lock."""
    if request.param == "redis":
        from django_redis import get_redis_connection

        from .conftest import _redis_or_fail

        _redis_or_fail()
        settings.MICROADJUST_JOB_LOCK_CACHE = "redis"
        get_redis_connection("redis").flushdb()
        yield "redis"
        get_redis_connection("redis").flushdb()
    else:
        yield "locmem"


def test_purge_job_deletes_old_events_and_records_the_run():
    make_events(old=3, new=2)
    job = jobs.run_job("purge")
    assert (job.status, job.message) == (Status.DONE, "Deleted 3 events older than 180 days.")
    assert job.outcome.deleted == 3
    row = LearningJob.objects.get(pk=job.pk)
    assert (row.status, row.progress_done, row.progress_total, row.progress_percent) == (Status.DONE, 1, 1, 100)
    assert row.started_at <= row.finished_at
    assert Event.objects.count() == 2


def test_a_finished_job_runs_only_once():
    make_events(old=1, new=0)
    job = jobs.run_job("purge")
    make_events(old=1, new=0)
    again = jobs.run_job("purge", job.pk)
    assert again.outcome is None
    assert (again.status, again.message, again.finished_at) == (Status.DONE, job.message, job.finished_at)
    assert Event.objects.count() == 1  # the second run did not delete


def test_a_running_job_is_not_started_twice(standin):
    standin("purge", "counting")
    job = LearningJob.objects.create(kind="purge", status=Status.RUNNING, started_at=timezone.now())
    assert jobs.run_job("purge", job.pk).status == Status.RUNNING
    assert job_standins.calls == []


def test_a_run_is_skipped_while_another_holds_the_lock(lock_cache, standin):
    standin("recluster", "counting")
    holder = LearningJob.objects.create(kind="recluster", status=Status.RUNNING, started_at=timezone.now())
    lock = job_lock("recluster", owner=str(holder.pk))
    assert isinstance(lock, RedisJobLock) == (lock_cache == "redis")
    assert lock.acquire()
    try:
        assert not job_lock("recluster", owner="other").acquire()
        job = jobs.run_job("recluster")
        assert job.status == Status.SKIPPED
        assert f"another recluster visitors run holds the lock (job #{holder.pk}" in job.message
        assert LearningJob.objects.get(pk=job.pk).finished_at is not None
        assert job_standins.calls == []
        assert jobs.run_job("purge").status == Status.DONE  # other kinds have their own lock
    finally:
        lock.release()
    assert jobs.run_job("recluster").status == Status.DONE
    assert not job_lock("recluster", owner="probe").is_held()  # released after the run


def test_the_redis_lock_expires_so_a_crashed_worker_frees_it(settings):
    """A worker that dies holding the lock never releases it: the lock's expiry must, so the
    next run can take it."""
    import time

    from django_redis import get_redis_connection

    from .conftest import _redis_or_fail

    _redis_or_fail()
    settings.MICROADJUST_JOB_LOCK_CACHE = "redis"
    settings.MICROADJUST_JOB_LOCK_TIMEOUT = 1
    crashed = job_lock("train", owner="1")
    assert crashed.acquire()  # and never released: the worker "crashed"
    ttl = get_redis_connection("redis").pttl(crashed._lock.name)
    assert 0 < ttl <= 1000
    successor = job_lock("train", owner="2")
    assert not successor.acquire()  # still held
    time.sleep(1.2)
    assert successor.acquire()  # expired: the next run goes ahead
    successor.release()


def test_progress_is_written_throttled_and_finally_complete(standin, settings):
    standin("train", "counting")
    settings.MICROADJUST_JOB_PROGRESS_INTERVAL = 0
    seen = []
    with CaptureQueriesContext(connection) as queries:
        job = jobs.run_job("train", on_progress=lambda done, total: seen.append(done), items=20_000)
    writes = [q for q in queries.captured_queries if "progress_done" in q["sql"]]
    assert len(seen) == 20_001  # the listener (a command's bar) sees every report
    assert 2 <= len(writes) <= 102  # the row: at most once per percent
    row = LearningJob.objects.get(pk=job.pk)
    assert (row.status, row.progress_done, row.progress_total) == (Status.DONE, 20_000, 20_000)
    assert row.message == "Counted 20000 items with {}."


def test_a_failing_job_stores_the_error_and_frees_the_lock(standin):
    standin("recluster", "broken")
    job = jobs.run_job("recluster")
    row = LearningJob.objects.get(pk=job.pk)
    assert (row.status, row.message) == (Status.FAILED, "ValueError: the centroids went missing")
    assert (row.progress_done, row.progress_total) == (1, 4)
    assert not job_lock("recluster", owner="probe").is_held()


def test_unknown_kinds_and_mismatched_rows_are_refused():
    with pytest.raises(jobs.UnknownJobKind, match="Unknown learning job 'nap'"):
        jobs.run_job("nap")
    job = LearningJob.objects.create(kind="train")
    with pytest.raises(jobs.UnknownJobKind, match="is a train job, not purge"):
        jobs.run_job("purge", job.pk)
    assert LearningJob.objects.get(pk=job.pk).status == Status.QUEUED


def test_tasks_pass_options_and_create_their_own_row_when_scheduled(standin):
    standin("recluster", "counting")
    summary = recluster.delay(k=3, method="hierarchical").get()
    assert job_standins.calls == [{"k": 3, "method": "hierarchical"}]
    job = LearningJob.objects.get()
    assert (job.kind, job.status, job.queued_by, job.message) == ("recluster", Status.DONE, None, summary)
    assert job.celery_task_id


@pytest.fixture
def eager_retries():
    """Eager Celery retries in place only when it does not propagate errors: with
    ``task_eager_propagates`` (the demo's setting) the caller gets the Retry instead."""
    from project.celery import app

    saved = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = saved


def test_a_transient_error_is_retried_on_the_same_row(standin, eager_retries):
    standin("purge", "flaky_purge")
    job_standins.failures_left = 2
    make_events(old=2, new=1)
    job = LearningJob.objects.create(kind="purge")
    assert purge_old_events.delay(job_id=job.pk).get() == 2
    assert len(job_standins.calls) == 3
    assert list(LearningJob.objects.values_list("pk", "status")) == [(job.pk, Status.DONE)]


def test_a_scheduled_run_retries_on_one_row_and_fails_when_retries_run_out(standin, eager_retries):
    standin("purge", "flaky_purge")
    job_standins.failures_left = 100
    assert purge_old_events.delay().get() is None
    assert len(job_standins.calls) == 1 + purge_old_events.max_retries
    job = LearningJob.objects.get()
    assert job.status == Status.FAILED
    assert job.message == "OperationalError: server closed the connection unexpectedly"


def test_beat_schedule_follows_the_settings():
    schedule = beat_schedule({"MICROADJUST_RECLUSTER_SCHEDULE": "0 1 * * 1", "MICROADJUST_PURGE_SCHEDULE": "",
                              "MICROADJUST_ANOMALY_SCHEDULE": None})
    assert {entry["task"] for entry in schedule.values()} == {
        "microadjust_cms.recluster", "microadjust_cms.train_engagement_model", "microadjust_cms.refresh_rollups"}
    weekly = schedule["microadjust-recluster"]["schedule"]
    assert (weekly.minute, weekly.hour, weekly.day_of_week) == ({0}, {1}, {1})
    train = schedule["microadjust-train-engagement-model"]["schedule"]
    assert (train.minute, train.hour) == ({0}, {3})  # the default, 0 3 * * *


@pytest.mark.parametrize("value, message", [
    ("30 2 * *", "must be a crontab of five fields"),
    ("75 2 * * *", "is not a valid crontab"),
])
def test_a_bad_schedule_is_a_configuration_error(value, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        beat_schedule({"MICROADJUST_TRAIN_SCHEDULE": value})


def test_the_demo_schedules_the_nightly_jobs_and_the_rollups(settings):
    from project.celery import app

    tasks = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert set(tasks) == {"microadjust_cms.recluster", "microadjust_cms.train_engagement_model",
                          "microadjust_cms.purge_events", "microadjust_cms.refresh_rollups",
                          "microadjust_cms.find_anomalies"}
    assert tasks["microadjust_cms.refresh_rollups"].minute == set(range(0, 60, 10))
    assert (tasks["microadjust_cms.recluster"].hour, tasks["microadjust_cms.recluster"].minute) == ({2}, {30})
    settings.MICROADJUST_PURGE_SCHEDULE = "5 5 * * *"
    assert beat_schedule()["microadjust-purge-events"]["schedule"].hour == {5}  # via get_setting
