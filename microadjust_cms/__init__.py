"""microadjust-cms: real-time content personalization for Wagtail.

The public API, for templates, views and tasks (imported lazily: safe before apps are ready):

- ``get_setting(name)``
- ``Signal``, ``register_signal``: add a signal from Python
- ``get_visitor(request)``: the request's visitor context
- ``decide(value, visitor)``: the one decision function for a PersonalizedBlock value
- ``validate_condition``, ``compile_condition``
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "get_setting": "microadjust_cms.conf",
    "Signal": "microadjust_cms.signals.registry",
    "register_signal": "microadjust_cms.signals.registry",
    "get_visitor": "microadjust_cms.visitor.context",
    "decide": "microadjust_cms.rendering.decisions",
    "validate_condition": "microadjust_cms.conditions",
    "compile_condition": "microadjust_cms.conditions",
    "ConditionError": "microadjust_cms.conditions",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'microadjust_cms' has no attribute {name!r}")
