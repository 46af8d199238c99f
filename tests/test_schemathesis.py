"""docs/openapi.yaml against the running app: Schemathesis generates requests from the spec
(valid ones, and in its negative mode ones that break it), sends them to the Django WSGI app in
process with the demo site loaded, and checks every answer against the spec: no server error,
a documented status, content type and headers, and a body that matches its schema.

Requests come from the test client's host (``localhost``), with an Origin the collect endpoint
accepts, so most reach the body; the spec's example ids and times are made the demo's own and
the present's, so the examples reach a stored batch and a rendered fragment. Cases per operation
and phase: MICROADJUST_FUZZ_EXAMPLES (fuzzing; the examples and coverage phases add theirs).
The number of cases run is printed at the end of the session.
"""

import os
import time
from collections import Counter
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from microadjust_cms.tracking.models import Event

from .helpers import report_at_session_end

SPEC_PATH = Path(__file__).parent.parent / "docs" / "openapi.yaml"
EXAMPLES = int(os.environ.get("MICROADJUST_FUZZ_EXAMPLES", "200"))
#: Schemathesis's WSGI client sends ``Host: localhost`` (in ALLOWED_HOSTS).
ORIGIN = "http://localhost"
#: The spec's examples: page 3's mobile-banner, events at this time (Nov 2023).
EXAMPLE_PAGE, EXAMPLE_T = "3", 1700000000000
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance,
          # A method the spec does not list: 405 with Allow, which lists the documented methods.
          unsupported_method, allow_header_conformance]

schema = schemathesis.openapi.from_path(SPEC_PATH, config=schemathesis.Config.from_dict({
    "generation": {"max-examples": EXAMPLES, "database": "none"},
    "phases": {"stateful": {"enabled": False}},
    "headers": {"Origin": ORIGIN},
}))
schema.app = get_wsgi_application()

#: operation → statuses of the cases run, printed at the end of the session.
cases: dict[str, Counter] = {}


@pytest.fixture
def in_process(settings):
    """As Django's test client does: the end of a request must not close the database
    connection, which holds the test's transaction. The rate limit out of the way (set once per
    test: each assignment to ``settings`` stacks another override)."""
    settings.MICROADJUST_COLLECT_RATE = "100000/m"
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _present(case, demo) -> None:
    """The spec's example ids and times made the demo's own and the present's."""
    if isinstance(case.query, dict) and case.query.get("page") == EXAMPLE_PAGE:
        case.query["page"] = str(demo["home"].pk)
    if isinstance(case.body, dict) and isinstance(case.body.get("events"), list):
        for event in case.body["events"]:
            if isinstance(event, dict) and event.get("t") == EXAMPLE_T:
                event["t"] = int(time.time() * 1000)


@schema.parametrize()
@hypothesis.settings(deadline=None, suppress_health_check=[
    hypothesis.HealthCheck.function_scoped_fixture, hypothesis.HealthCheck.too_slow,
    hypothesis.HealthCheck.filter_too_much, hypothesis.HealthCheck.data_too_large])
def test_the_app_answers_as_docs_openapi_says(case, demo, in_process):
    _present(case, demo)
    before = Event.objects.count()
    response = case.call_and_validate(checks=CHECKS)
    phase = case.meta.phase.name.value if case.meta else "explicit"
    cases.setdefault(f"{case.operation.label} ({phase})", Counter())[response.status_code] += 1
    if response.status_code != 204:
        assert Event.objects.count() == before  # refused: nothing of the batch is kept


@pytest.fixture(scope="module", autouse=True)
def _report_cases(request):
    yield
    report_at_session_end(request.config, f"schemathesis cases (tests/test_schemathesis.py, "
                                          f"max-examples={EXAMPLES})", cases, "cases")
