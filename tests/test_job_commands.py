"""The learning job commands: the job path, a progress bar, the summary, clear errors."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from microadjust_cms.jobs import runner as jobs
from microadjust_cms.jobs.locks import job_lock
from microadjust_cms.jobs.models import LearningJob
from microadjust_cms.tracking.models import Event

from . import job_standins

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def standins(monkeypatch):
    """recluster and train land with the learning modules; these report progress the same way."""
    job_standins.calls.clear()
    monkeypatch.setitem(jobs.JOBS, "recluster", "tests.job_standins.counting")
    monkeypatch.setitem(jobs.JOBS, "train", "tests.job_standins.counting")


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_purge_command_goes_through_the_job_path():
    Event.objects.create(visitor_id="a", type="pageview", occurred_at=timezone.now() - timedelta(days=9))
    out, err = run("microadjust_purge_events", "--days", "7")
    assert out == "Deleted 1 events older than 7 days.\n"
    assert "Purge old events: 100%" in err and "1/1" in err
    job = LearningJob.objects.get()
    assert (job.kind, job.status, job.message) == ("purge", "done", out.strip())


def test_recluster_command_passes_options_and_draws_progress():
    out, err = run("microadjust_recluster", "--k", "4", "--method", "hierarchical")
    assert job_standins.calls == [{"k": 4, "method": "hierarchical"}]
    assert out == "Counted 1000 items with {'k': 4, 'method': 'hierarchical'}.\n"
    assert "Recluster visitors: 100%" in err and "1000/1000" in err


def test_train_command_and_no_progress():
    out, err = run("microadjust_train", "--no-progress")
    assert out == "Counted 1000 items with {}.\n"
    assert err == ""
    assert LearningJob.objects.get().kind == "train"


@pytest.mark.parametrize("args, message", [
    (["microadjust_recluster", "--method", "spectral"], "invalid choice: 'spectral'"),
    (["microadjust_recluster", "--k", "1"], "--k must be 2 or more"),
    (["microadjust_recluster", "--k", "many"], "invalid int value: 'many'"),
    (["microadjust_purge_events", "--days", "-1"], "--days must be 0 or more"),
])
def test_bad_options_are_command_errors_and_nothing_runs(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not LearningJob.objects.exists()
    assert job_standins.calls == []


def test_a_held_lock_is_a_command_error():
    lock = job_lock("train", owner="elsewhere")
    assert lock.acquire()
    try:
        with pytest.raises(CommandError, match="another train the engagement model run holds the lock"):
            run("microadjust_train")
    finally:
        lock.release()
    assert LearningJob.objects.get().status == "skipped"


def test_a_failed_job_is_a_command_error(monkeypatch):
    monkeypatch.setitem(jobs.JOBS, "recluster", "tests.job_standins.broken")
    with pytest.raises(CommandError, match=r"Recluster visitors failed \(job #\d+\): ValueError: the centroids"):
        run("microadjust_recluster")


class TestRealJobs:
    """The commands with the real learning functions (no stand-ins) on planted data."""

    @pytest.fixture(autouse=True)
    def standins(self):  # overrides the module's autouse fixture: the real JOBS entries
        return None

    def test_recluster_command_clusters_planted_visitors(self):
        from microadjust_cms.learning.models import Cluster, ClusterRun

        from .test_recluster import planted_events

        planted_events(per_type=20, seed=5)
        out, err = run("microadjust_recluster", "--k", "3")
        run_row = ClusterRun.objects.get()
        assert (run_row.visitors, run_row.k, run_row.status) == (60, 3, "done")
        assert Cluster.objects.filter(active=True).count() == 3
        assert out.strip() == str(run_row) and "Recluster visitors" in err
        assert LearningJob.objects.get().status == "done"

    def test_train_command_trains_on_planted_impressions(self):
        from microadjust_cms.learning.models import EngagementModel

        from .engagement_data import plant

        plant(visitors=40, visits=3)
        out, _err = run("microadjust_train", "--no-progress")
        model = EngagementModel.objects.get()
        assert out.strip() == str(model)
        assert model.training_rows > 0 and model.auc is not None and model.auc > 0.7
