"""The lift simulator, small and seeded: the same visitors through the holdout, the editors'
rules and the full system, on the real site (middleware, collect endpoint, nightly jobs)."""

import io

import pytest
from django.core.management import CommandError, call_command

from microadjust_cms.tracking.models import Event
from project.demo.lift import APPEAL, POPULATION
from project.demo.management.commands.microadjust_lift import run_lift

pytestmark = pytest.mark.django_db


def test_holdout_below_rules_below_the_full_system_once_it_has_learned(demo):
    """300 visitors over 5 simulated days (seed 16). The full system pays for exploring on the
    first days, so the ordering is asserted on the last day, after four nights of learning
    (bench/lift.py reports every day and the whole run, where it may not hold)."""
    result = run_lift(visitors=300, days=5, seed=16, arms=("holdout", "rules", "full"))
    figures, last = result["figures"], result["last_day"]
    summary = {arm: (round(f["ctr"], 4), round(f["conversions_per_visit"], 3),
                     round(last[arm]["ctr"], 4), round(last[arm]["conversions_per_visit"], 3))
               for arm, f in figures.items()}
    # The same visitors, visits and random draws in every arm: only what the site shows differs.
    assert len({f["visits"] for f in figures.values()}) == 1, summary
    assert figures["holdout"]["ctr"] < figures["rules"]["ctr"], summary
    for metric in ("ctr", "conversions_per_visit"):
        assert last["holdout"][metric] < last["rules"][metric] < last["full"][metric], summary
    # Through the real site: each arm starts from an empty event table, so what is left is the
    # full system's own events, stored by the collect endpoint; auto-optimize counted trials.
    assert Event.objects.filter(type="pageview").count() > 300
    tides = [row for row in result["convergence"] if row["block"] == "tides-1"]
    assert sum(row["trials"] for row in tides) > 20
    assert result["nightly_job_failures"] == []


def test_every_hidden_type_has_preferences_and_the_learners_are_in_the_population():
    names = {kind.name for kind in POPULATION}
    assert {"mobile_video_fan", "desktop_deep_reader", "skimmer", "deal_hunter", "struggling_learner"} <= names
    assert set(APPEAL) <= names


def test_the_command_refuses_to_delete_data_unless_told(demo):
    with pytest.raises(CommandError, match="--reset-data"):
        call_command("microadjust_lift", stdout=io.StringIO())
