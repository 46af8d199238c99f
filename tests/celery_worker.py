"""A real Celery worker process for end-to-end tests (fixtures imported by conftest.py).

``celery_worker_process`` (session) starts ``celery -A project worker --pool=solo`` on the Redis
broker, against the test database of this pytest process, and always stops it. ``live_celery``
(per test) switches this process's Celery app from eager to that broker and needs committed
data, so it brings ``transactional_db``::

    def test_something(live_celery):
        job = LearningJob.objects.create(kind="purge")
        purge_old_events.delay(job_id=job.pk)
        job = live_celery.wait_for_job(job.pk)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BROKER_URL = os.environ.get("MICROADJUST_TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/12")
START_TIMEOUT = 60
JOB_TIMEOUT = 60


class WorkerProcess:
    def __init__(self, process: subprocess.Popen, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"the Celery worker exited ({self.process.returncode}):\n{self.log()[-4000:]}")

    def wait_for_job(self, job_id: int, timeout: float = JOB_TIMEOUT):
        """The job's row once it reaches a final status (fails with the worker's log if not)."""
        from microadjust_cms.jobs.models import LearningJob

        deadline = time.monotonic() + timeout
        while True:
            job = LearningJob.objects.get(pk=job_id)
            if job.is_final:
                return job
            self.check_alive()
            if time.monotonic() > deadline:
                pytest.fail(f"job #{job_id} still {job.status} after {timeout} s; worker log:\n"
                            f"{self.log()[-4000:]}")
            time.sleep(0.1)


def _broker_or_fail() -> None:
    import redis

    try:
        redis.Redis.from_url(BROKER_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:  # never a skip: the real-worker test must run
        pytest.fail(f"Redis broker at {BROKER_URL} is not reachable ({exc}); start redis-server")


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    import redis
    from django.db import connection

    _broker_or_fail()
    redis.Redis.from_url(BROKER_URL).flushdb()  # no messages left from an earlier run
    with django_db_blocker.unblock():
        database = str(connection.settings_dict["NAME"])
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings.test",
           "MICROADJUST_TEST_WORKER_DATABASE": database, "MICROADJUST_TEST_WORKER_BROKER": BROKER_URL,
           "MICROADJUST_TEST_WORKER_REDIS_STORE": "1"}
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "project", "worker", "--pool=solo", "--loglevel=INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "--hostname=microadjust-test@%h"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    worker = WorkerProcess(process, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while " ready." not in worker.log():
            worker.check_alive()
            if time.monotonic() > deadline:
                pytest.fail(f"the Celery worker did not start in {START_TIMEOUT} s:\n{worker.log()[-4000:]}")
            time.sleep(0.1)
        yield worker
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # warm shutdown: finishes the task in hand
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def live_celery(celery_worker_process, transactional_db):
    """This process's Celery app sends to the real worker (not eager) for the test."""
    from project.celery import app

    saved = {"task_always_eager": app.conf.task_always_eager, "broker_url": app.conf.broker_url}
    app.conf.update(task_always_eager=False, broker_url=BROKER_URL)
    _drop_broker_connections(app)
    try:
        yield celery_worker_process
    finally:
        app.conf.update(saved)
        _drop_broker_connections(app)


def _drop_broker_connections(app) -> None:
    """The app keeps the pool of the broker URL it first used (kombu keeps one pool per URL)."""
    app._pool = None
    app.amqp._producer_pool = None
