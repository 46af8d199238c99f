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

from .rendering.simulation import simulated_overrides
from .visitor.context import VisitorContext


@contextlib.contextmanager
def as_visitor(client: Any = None, *, segments: list[str] | None = None,
               **signals: Any) -> Iterator[None]:
    """Every request made inside the block sees a simulated visitor with these values.

    Profile numbers (``visits``, ``page_views``, ``visit_pageviews``) are simulated too, so
    no profile store is needed. ``client`` is accepted for readability and ignored.
    """

    original = VisitorContext.__init__

    def init(self: VisitorContext, request: Any, **_kwargs: Any) -> None:
        overrides = simulated_overrides(segments=segments, **dict(signals))
        original(self, request, overrides=overrides, simulated=True)

    with mock.patch.object(VisitorContext, "__init__", init):
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
