"""What an edit may change once an experiment has started: arms, slug and slices are fixed for
everyone; what stops enrolment (traffic share, start, end) needs the pause or finish permission;
an arm with exposures cannot be deleted on its own. Through the real snippet edit view."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import RestrictedError
from django.utils import timezone
from waffle.models import Flag

from microadjust_cms.experiments.lifecycle import transition
from microadjust_cms.experiments.models import Arm, ExclusionGroup, Experiment, Exposure

from .test_experiment_report import SNIPPETS, editor_client, expose, make
from .test_experiments import experiment_post

pytestmark = pytest.mark.django_db


def edit_post(experiment, arms=None, **fields):
    """The edit form's post for ``experiment`` as stored, with ``arms`` as (id or None, name,
    weight, control, delete) and ``fields`` changed."""
    flag = experiment.flag
    traffic = "100" if flag.everyone or flag.percent is None else str(flag.percent)
    stored = [(a.pk, a.name, a.weight, a.is_control, False) for a in experiment.arms.order_by("sort_order", "pk")]
    arms = stored if arms is None else arms
    data = experiment_post([(name, weight, control) for _pk, name, weight, control, _d in arms],
                           name=experiment.name, slug=experiment.slug, goal_name=experiment.goal_name,
                           traffic_percent=traffic, group_share=str(experiment.group_share),
                           exclusion_group=str(experiment.exclusion_group_id or ""),
                           starts_at=_local(experiment.starts_at), ends_at=_local(experiment.ends_at))
    data["arms-INITIAL_FORMS"] = str(sum(1 for pk, *_rest in arms if pk))
    for i, (pk, _name, _weight, _control, delete) in enumerate(arms):
        data[f"arms-{i}-id"] = str(pk or "")
        data[f"arms-{i}-DELETE"] = "1" if delete else ""
    data.update(fields)
    return data


def _local(value):
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


def started(slug="exp"):
    experiment = make(slug)
    transition(experiment, "start", None)
    experiment.refresh_from_db()
    return experiment


def arms_of(experiment):
    return [(a.name, a.weight, a.is_control) for a in experiment.arms.order_by("sort_order", "pk")]


def test_a_draft_experiments_arms_and_slug_can_still_change(admin_client):
    experiment = make()
    arms = [(pk, name + "x", weight + 1, control, False) for pk, name, weight, control, _d in
            [(a.pk, a.name, a.weight, a.is_control, False) for a in experiment.arms.order_by("sort_order")]]
    response = admin_client.post(f"{SNIPPETS}edit/{experiment.pk}/", edit_post(experiment, arms, slug="renamed"))
    assert response.status_code == 302, response.content.decode()[:2000]
    experiment.refresh_from_db()
    assert experiment.slug == "renamed"
    assert arms_of(experiment) == [("controlx", 51, True), ("Bx", 26, False), ("Cx", 26, False)]


def test_renaming_or_reweighting_a_started_experiments_arms_changes_nothing(admin_client):
    experiment = started()
    before = arms_of(experiment)
    arms = [(a.pk, "renamed-" + a.name, 99, not a.is_control, False) for a in experiment.arms.order_by("sort_order")]
    edit = admin_client.get(f"{SNIPPETS}edit/{experiment.pk}/").content.decode()
    assert "Fixed once the experiment has started" in edit
    response = admin_client.post(f"{SNIPPETS}edit/{experiment.pk}/",
                                 edit_post(experiment, arms, slug="renamed", name="New name"))
    assert response.status_code == 302, response.content.decode()[:2000]
    experiment.refresh_from_db()
    assert experiment.name == "New name"  # what may change, did
    assert experiment.slug == "exp" and arms_of(experiment) == before


@pytest.mark.parametrize("change", ["delete", "add"])
def test_adding_or_deleting_a_started_experiments_arm_is_a_form_error(admin_client, change):
    experiment = started()
    exposure = expose(experiment, "C", "v1")
    stored = [(a.pk, a.name, a.weight, a.is_control, False) for a in experiment.arms.order_by("sort_order")]
    if change == "delete":
        stored[2] = (*stored[2][:4], True)
    else:
        stored.append((None, "D", 10, False, False))
    response = admin_client.post(f"{SNIPPETS}edit/{experiment.pk}/", edit_post(experiment, stored))
    assert response.status_code == 200
    assert "The arms of a started experiment cannot change" in response.content.decode()
    assert arms_of(experiment) == [("control", 50, True), ("B", 25, False), ("C", 25, False)]
    assert Exposure.objects.filter(pk=exposure.pk).exists()


def test_an_arm_with_exposures_cannot_be_deleted_alone_but_its_experiment_can():
    experiment = started()
    expose(experiment, "B", "v1")
    with pytest.raises(RestrictedError):
        Arm.objects.get(experiment=experiment, name="B").delete()
    assert Exposure.objects.count() == 1
    experiment.delete()
    assert not Exposure.objects.exists() and not Arm.objects.exists()


def test_the_snippet_delete_view_deletes_an_experiment_with_exposures(admin_client):
    experiment = started()
    expose(experiment, "B", "v1")
    response = admin_client.post(f"{SNIPPETS}delete/{experiment.pk}/")
    assert response.status_code == 302
    assert not Experiment.objects.exists() and not Exposure.objects.exists()


def test_the_exclusion_slice_is_fixed_once_started(admin_client):
    group = ExclusionGroup.objects.create(name="home")
    experiment = make(exclusion_group=group, group_share=30)
    transition(experiment, "start", None)
    experiment.refresh_from_db()
    offset = experiment.group_offset
    response = admin_client.post(f"{SNIPPETS}edit/{experiment.pk}/",
                                 edit_post(experiment, group_share="80", exclusion_group=""))
    assert response.status_code == 302
    experiment.refresh_from_db()
    assert (experiment.exclusion_group_id, experiment.group_share, experiment.group_offset) == (group.pk, 30, offset)


def stop_enrolment(experiment):
    """Everything an edit could do to stop enrolment without the pause or finish buttons (a
    start in the future and an end in the past together are refused anyway)."""
    return edit_post(experiment, traffic_percent="0", name="Edited",
                     starts_at=_local(timezone.now() - timedelta(days=30)),
                     ends_at=_local(timezone.now() - timedelta(minutes=5)))


def test_an_editor_with_only_the_change_permission_cannot_stop_enrolment():
    experiment = started()
    client = editor_client("change_experiment", "view_experiment")
    edit = client.get(f"{SNIPPETS}edit/{experiment.pk}/")
    assert edit.status_code == 200
    assert "Only someone who may pause the experiment" in edit.content.decode()
    response = client.post(f"{SNIPPETS}edit/{experiment.pk}/", stop_enrolment(experiment))
    assert response.status_code == 302, response.context["form"].errors
    response = client.post(f"{SNIPPETS}edit/{experiment.pk}/", edit_post(
        experiment, name="Edited", starts_at=_local(timezone.now() + timedelta(days=30))))
    assert response.status_code == 302, response.context["form"].errors
    before_start = experiment.starts_at
    experiment.refresh_from_db()
    assert experiment.name == "Edited"
    assert experiment.starts_at == before_start and experiment.ends_at is None
    assert Flag.objects.get(name=experiment.flag_name).everyone is True
    assert experiment.is_live()


def test_an_editor_with_pause_and_finish_permissions_may_change_traffic_and_schedule():
    experiment = started()
    client = editor_client("change_experiment", "view_experiment", "pause_experiment", "finish_experiment")
    later = timezone.now() + timedelta(days=30)
    response = client.post(f"{SNIPPETS}edit/{experiment.pk}/",
                            edit_post(experiment, traffic_percent="0", starts_at=_local(later)))
    assert response.status_code == 302, response.context["form"].errors
    experiment.refresh_from_db()
    assert experiment.starts_at > timezone.now() and not experiment.is_live()
    response = client.post(f"{SNIPPETS}edit/{experiment.pk}/", edit_post(
        experiment, starts_at="", ends_at=_local(timezone.now() - timedelta(minutes=5))))
    assert response.status_code == 302, response.context["form"].errors
    experiment.refresh_from_db()
    flag = Flag.objects.get(name=experiment.flag_name)
    assert flag.percent == Decimal("0.0") and flag.everyone is None
    assert experiment.ends_at < timezone.now() and not experiment.is_live()


def test_a_finished_experiments_schedule_is_fixed_even_for_a_superuser(admin_client):
    experiment = started()
    transition(experiment, "finish", None)
    experiment.refresh_from_db()
    ended = experiment.ends_at
    response = admin_client.post(f"{SNIPPETS}edit/{experiment.pk}/",
                                 edit_post(experiment, ends_at=_local(timezone.now() + timedelta(days=9))))
    assert response.status_code == 302, response.content.decode()[:2000]
    experiment.refresh_from_db()
    assert experiment.ends_at == ended
