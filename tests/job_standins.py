"""Job functions for the job machinery tests: they report progress like the real learning jobs
(recluster, train) and fail on demand. Tests point ``jobs.JOBS`` at them with monkeypatch."""

from django.db import OperationalError

from microadjust_cms.jobs.runner import purge_old_events

calls: list[dict] = []
failures_left = 0


class Summary:
    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def counting(*, progress, items: int = 1000, **options):
    """Reports every item, as a careless job would; the recorder must throttle the writes."""
    calls.append(options)
    for done in range(items + 1):
        progress(done, items)
    return Summary(f"Counted {items} items with {options}.")


def broken(*, progress, **options):
    progress(1, 4)
    raise ValueError("the centroids went missing")


def flaky_purge(*, progress, days=None):
    """The purge job, after ``failures_left`` transient database errors."""
    global failures_left
    calls.append({"days": days})
    if failures_left:
        failures_left -= 1
        raise OperationalError("server closed the connection unexpectedly")
    return purge_old_events(progress=progress, days=days)
