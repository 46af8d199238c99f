"""Test your templates as a given visitor.

    from microadjust_cms.testutils import as_visitor, override_signal

    with as_visitor(client, device="mobile", visits=3, segments=["vip"]):
        response = client.get("/")

    with override_signal("utm_source", "newsletter"):
        response = client.get("/")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

from .context import VisitorContext
from .simulation import simulated_visitor


@contextlib.contextmanager
def as_visitor(client: Any = None, *, segments: list[str] | None = None,
               **signals: Any) -> Iterator[None]:
    """Every request made inside the block sees a simulated visitor with these values.

    Profile numbers (``visits``, ``page_views``, ``visit_pageviews``) are simulated too, so
    no profile store is needed. ``client`` is accepted for readability and ignored.
    """

    def make(self: VisitorContext, request: Any, **_kwargs: Any) -> None:
        simulated = simulated_visitor(request, segments=segments, **dict(signals))
        self.__dict__.update(simulated.__dict__)

    with mock.patch.object(VisitorContext, "__init__", make):
        yield


@contextlib.contextmanager
def override_signal(name: str, value: Any, *, param: str | None = None) -> Iterator[None]:
    """Force one signal's value for requests made inside the block (other signals are real)."""
    original = VisitorContext.__init__
    key = name if param is None else (name, param)

    def init(self: VisitorContext, request: Any, **kwargs: Any) -> None:
        original(self, request, **kwargs)
        self.overrides[key] = value

    with mock.patch.object(VisitorContext, "__init__", init):
        yield
