"""The signal registry: every fact a condition may ask about the visitor, with its type.

Plain Python: no views, admin, Celery or models here. Signals reach state only through the
visitor context passed to their resolver.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..visitor.context import VisitorContext

#: Value types a signal can declare, and the operators that make sense for each.
TYPE_OPERATORS: dict[str, tuple[str, ...]] = {
    "string": ("eq", "ne", "in", "not_in", "contains", "exists"),
    "integer": ("eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", "exists"),
    "number": ("eq", "ne", "lt", "lte", "gt", "gte", "between", "exists"),
    "boolean": ("eq", "ne", "exists"),
    # A set of strings (e.g. the user's groups): "contains" one, "in" = shares any of a list.
    "set": ("contains", "in", "not_in", "exists"),
}

Choices = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Signal:
    """A named fact about the visitor or the request.

    ``resolve(visitor, param)`` returns the value; ``needs_profile`` tells the preview and the
    docs that the value comes from the profile store. ``choices`` (or a callable returning them)
    lets the admin offer a select instead of a free input. ``param_label`` marks signals that
    take a parameter (``query_param`` takes the parameter's name).
    """

    name: str
    type: str
    resolve: Callable[[VisitorContext, str | None], Any]
    label: str = ""
    help_text: str = ""
    choices: Choices | Callable[[], Choices] | None = None
    needs_profile: bool = False
    param_label: str = ""
    #: The parameter is a block id; in a personalized block's variants "this" means that block.
    param_is_block: bool = False
    operators: tuple[str, ...] = field(default=())
    #: The parameter's known values (or a callable returning them), offered by the editor and
    #: checked when an editor saves (``predicted_engagement`` takes a content type).
    param_choices: Choices | Callable[[], Choices] | None = None
    #: Value choices that depend on the parameter (``experiment_arm``: each experiment's own
    #: arms): a callable returning parameter → choices. Overrides ``choices`` when a rule names
    #: its parameter, so neither the editor nor validation offers another experiment's arm.
    choices_by_param: Callable[[], dict[str, Choices]] | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPE_OPERATORS:
            raise ValueError(f"Signal {self.name!r}: unknown type {self.type!r}")
        if not self.operators:
            object.__setattr__(self, "operators", TYPE_OPERATORS[self.type])
        if not self.label:
            object.__setattr__(self, "label", self.name.replace("_", " ").capitalize())

    @property
    def takes_param(self) -> bool:
        return bool(self.param_label)

    def get_choices(self, param: str | None = None) -> list[tuple[str, str]] | None:
        """The value choices; for a signal with ``choices_by_param`` and a ``param``, that
        parameter's own (none for an unknown parameter)."""
        if self.choices_by_param is not None and param:
            return list(self.choices_by_param().get(param, ()))
        choices = self.choices() if callable(self.choices) else self.choices
        return list(choices) if choices is not None else None

    def get_param_choices(self) -> list[tuple[str, str]] | None:
        choices = self.param_choices() if callable(self.param_choices) else self.param_choices
        return list(choices) if choices is not None else None

    def describe(self) -> dict[str, Any]:
        """What the admin condition editor needs to offer the right inputs."""
        return {
            "name": self.name,
            "label": str(self.label),
            "type": self.type,
            "help": str(self.help_text),
            "operators": list(self.operators),
            "choices": self.get_choices(),
            "param": str(self.param_label) or None,
            "param_default": "this" if self.param_is_block else None,
            "param_choices": self.get_param_choices(),
            "choices_by_param": ({param: list(choices) for param, choices in self.choices_by_param().items()}
                                 if self.choices_by_param is not None else None),
        }


class SignalRegistry:
    """Name → Signal. The app's own signals first (each package contributes its own, see
    ``contribute``), then whatever sites add through the Wagtail hook."""

    def __init__(self) -> None:
        self._signals: dict[str, Signal] = {}
        self._lock = threading.Lock()
        self._hooks_loaded = False
        self._contributors: list[Callable[[SignalRegistry], None]] = []

    def contribute(self, register: Callable[[SignalRegistry], None]) -> None:
        """Add ``register(registry)`` to what runs on first use, before the sites' hooks. The app's
        packages contribute their signals this way (``apps.ready``): the registry imports none of
        them, so the signals of a feature live in that feature's package."""
        if register not in self._contributors:
            self._contributors.append(register)

    def register(self, signal: Signal, *, replace: bool = False) -> Signal:
        if signal.name in self._signals and not replace:
            raise ValueError(f"A signal named {signal.name!r} is already registered")
        self._signals[signal.name] = signal
        return signal

    def unregister(self, name: str) -> None:
        self._signals.pop(name, None)

    def _ensure_loaded(self) -> None:
        if self._hooks_loaded:
            return
        with self._lock:
            if self._hooks_loaded:
                return
            for register in self._contributors:
                register(self)
            try:
                from wagtail import hooks
            except ImportError:  # pragma: no cover - wagtail is a dependency
                hooks = None
            if hooks is not None:
                for fn in hooks.get_hooks("register_microadjust_signals"):
                    result = fn(self)
                    for signal in result or ():
                        self.register(signal)
            self._hooks_loaded = True

    def get(self, name: str) -> Signal | None:
        self._ensure_loaded()
        return self._signals.get(name)

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._signals

    def all(self) -> Iterable[Signal]:
        self._ensure_loaded()
        return list(self._signals.values())

    def describe(self) -> list[dict[str, Any]]:
        return [s.describe() for s in sorted(self.all(), key=lambda s: str(s.label))]


registry = SignalRegistry()


def register_signal(signal: Signal, *, replace: bool = False) -> Signal:
    """Add a signal from plain Python (the Wagtail hook ``register_microadjust_signals`` also works)."""
    return registry.register(signal, replace=replace)
