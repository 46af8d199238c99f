"""Segments: rule segments editors write (``models``, ``membership``) and the cluster segments
learning maintains (``clusters``), with the signals they contribute (``signals``).

Before 0.2 ``microadjust_cms.segments`` was the module now at ``segments.membership``; its names
still resolve here, with a DeprecationWarning, until 0.3.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    import warnings
    from importlib import import_module

    if name.startswith("__"):
        raise AttributeError(name)
    membership = import_module("microadjust_cms.segments.membership")
    if not hasattr(membership, name):
        raise AttributeError(f"module 'microadjust_cms.segments' has no attribute {name!r}")
    warnings.warn(f"microadjust_cms.segments.{name} moved to microadjust_cms.segments.membership.{name} "
                  "(the old path goes in 0.3).", DeprecationWarning, stacklevel=2)
    return getattr(membership, name)
