import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from django.test import Client

VARIANT_RE = re.compile(r'data-ma-block="([^"]+)" data-ma-variant="([^"]+)"')


def variants(response) -> dict[str, str]:
    """block id → variant name, from a rendered page."""
    assert response.status_code == 200, response.status_code
    return dict(VARIANT_RE.findall(response.content.decode()))


def visitor_client(**defaults) -> Client:
    """A test client carrying a valid signed visitor cookie (a fresh visitor id, kept on
    ``client.visitor_id``), as a first page view leaves a browser."""
    from microadjust_cms.conf import get_setting
    from microadjust_cms.visitor.context import visitor_cookie_signer

    client = Client(**defaults)
    client.visitor_id = uuid.uuid4().hex
    client.cookies[get_setting("COOKIE_NAME")] = visitor_cookie_signer().sign(client.visitor_id)
    return client


def stored_event(at=None, **fields):
    """An event the server received at ``at`` (its ``occurred_at`` too unless given): the
    experiment report measures on the server's clock (``received_at``), which the model sets
    itself on creation."""
    from django.utils import timezone

    from microadjust_cms.tracking.models import Event

    at = at or timezone.now()
    fields.setdefault("occurred_at", at)
    event = Event.objects.create(**fields)
    Event.objects.filter(pk=event.pk).update(received_at=at)
    event.received_at = at
    return event


def report_at_session_end(config, title: str, counts: dict, noun: str) -> None:
    """Print ``label: N <noun>, statuses {...}`` per label in pytest's terminal summary (the
    fuzzing suites' case counts, for humans and closing notes)."""
    lines = [f"{label}: {sum(c.values())} {noun}, statuses {dict(sorted(c.items()))}"
             for label, c in counts.items()]
    if not lines:
        return

    class Summary:
        def pytest_terminal_summary(self, terminalreporter):
            terminalreporter.write_sep("-", title)
            for line in lines:
                terminalreporter.write_line(line)

    config.pluginmanager.register(Summary(), f"microadjust-report-{title}")


@contextmanager
def redis_commands_sent() -> Iterator[list]:
    """The packed commands redis-py sends inside the block (one per round trip)."""
    from redis.connection import Connection

    sent: list = []
    original = Connection.send_packed_command

    def spy(self, command, *args, **kwargs):
        sent.append(command)
        return original(self, command, *args, **kwargs)

    with mock.patch.object(Connection, "send_packed_command", spy):
        yield sent
