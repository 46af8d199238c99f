"""The "Learning jobs" admin page and its buttons (eager Celery, as in the demo)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from microadjust_cms.jobs import runner as jobs
from microadjust_cms.jobs.models import LearningJob
from microadjust_cms.tracking.models import Event

pytestmark = pytest.mark.django_db
INDEX = "/admin/microadjust/jobs/"


def run_url(kind):
    return f"{INDEX}run/{kind}/"


@pytest.fixture
def editor(django_user_model):
    """A Wagtail editor (admin access) without the run_learning_jobs permission."""
    user = django_user_model.objects.create_user("editor", password="pw")
    user.groups.add(Group.objects.get(name="Editors"))
    return user


@pytest.fixture
def job_runner(django_user_model):
    """Not a superuser: admin access and the run permission only."""
    user = django_user_model.objects.create_user("runner", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="access_admin"),
                              Permission.objects.get(codename="run_learning_jobs"))
    return user


def menu_urls(user):
    from django.test import RequestFactory

    from microadjust_cms.admin.menu import personalization_menu

    request = RequestFactory().get("/admin/")
    request.user = user
    return [item.url for item in personalization_menu.menu_items_for_request(request)]


def test_the_page_lists_jobs_and_offers_the_buttons(admin_client, admin_user):
    LearningJob.objects.create(kind="train", status="done", message="Model v3: AUC 0.81", queued_by=admin_user)
    response = admin_client.get(INDEX)
    assert response.status_code == 200
    html = response.content.decode()
    for kind, label in [("recluster", "Recluster now"), ("train", "Train now"), ("purge", "Purge old events")]:
        assert f'action="{run_url(kind)}"' in html and label in html
    assert "csrfmiddlewaretoken" in html
    assert "Model v3: AUC 0.81" in html and "Train the engagement model" in html
    assert 'http-equiv="refresh"' not in html  # nothing queued or running
    assert INDEX in menu_urls(admin_user)


def test_the_page_refreshes_while_a_job_is_queued_or_running(admin_client):
    LearningJob.objects.create(kind="recluster", status="running", progress_done=30, progress_total=120)
    html = admin_client.get(INDEX).content.decode()
    assert '<meta http-equiv="refresh" content="3">' in html
    assert "25% (30/120)" in html


def test_an_editor_without_the_permission_can_neither_see_nor_run(client, editor):
    """Wagtail turns PermissionDenied in the admin into a redirect home with its message."""
    client.force_login(editor)
    response = client.get(INDEX, follow=True)
    assert response.redirect_chain == [("/admin/", 302)]
    assert "Sorry, you do not have permission to access this area." in response.content.decode()
    for kind in ("recluster", "train", "purge"):
        response = client.post(run_url(kind), follow=True)
        assert response.redirect_chain == [("/admin/", 302)]
        assert "you do not have permission" in response.content.decode()
    assert not LearningJob.objects.exists()
    assert INDEX not in menu_urls(editor)


# Transactional: the view queues the task on commit, and the message it adds then must reach
# the response (in a test transaction the callbacks would run after the response).
@pytest.mark.django_db(transaction=True)
def test_purge_button_queues_and_eager_celery_finishes_it(admin_client, admin_user):
    Event.objects.create(visitor_id="a", type="pageview", occurred_at=timezone.now() - timedelta(days=300))
    response = admin_client.post(run_url("purge"))
    assert response.status_code == 302 and response["Location"] == INDEX
    job = LearningJob.objects.get()
    assert (job.kind, job.status, job.queued_by) == ("purge", "done", admin_user)
    assert job.celery_task_id
    assert not Event.objects.exists()
    html = admin_client.get(INDEX).content.decode()
    assert f"Purge old events finished (job #{job.pk}): Deleted 1 events older than 180 days." in html


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind, label", [("recluster", "Recluster visitors"), ("train", "Train the engagement model")])
def test_learning_buttons_run_their_job_for_a_user_with_the_permission(client, job_runner, monkeypatch, kind, label):
    monkeypatch.setitem(jobs.JOBS, kind, "tests.job_standins.counting")
    client.force_login(job_runner)
    response = client.post(run_url(kind), follow=True)
    job = LearningJob.objects.get()
    assert (job.kind, job.status, job.queued_by, job.progress_done) == (kind, "done", job_runner, 1000)
    assert f"{label} finished (job #{job.pk}): Counted 1000 items" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_failed_job_is_reported_as_a_warning(admin_client, monkeypatch):
    monkeypatch.setitem(jobs.JOBS, "recluster", "tests.job_standins.broken")
    response = admin_client.post(run_url("recluster"), follow=True)
    assert response.status_code == 200
    assert "Recluster visitors failed (job #" in response.content.decode()
    assert LearningJob.objects.get().status == "failed"


def test_run_takes_post_only_and_known_kinds(admin_client):
    assert admin_client.get(run_url("purge")).status_code == 405
    assert admin_client.post(run_url("nap")).status_code == 404
    assert not LearningJob.objects.exists()


def test_the_permissions_can_be_granted_to_a_group(admin_client):
    html = admin_client.get("/admin/groups/new/").content.decode()
    run = Permission.objects.get(codename="run_learning_jobs")
    view = Permission.objects.get(codename="view_learningjob")
    assert f'value="{run.pk}"' in html and f'value="{view.pk}"' in html
