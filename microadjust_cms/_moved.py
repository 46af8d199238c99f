"""Old import paths that keep working for one release after the 0.2 package layout.

Each old module is a few lines calling ``moved``: importing it warns once (DeprecationWarning,
pointing at the importer) and every attribute is read from the new module, so
``from microadjust_cms.blocks import PersonalizedBlock`` gives the very same class as
``microadjust_cms.rendering.blocks``. The old paths go in 0.3.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from importlib import import_module
from typing import Any

REMOVED_IN = "0.3"

#: old module → new module, for the docs and the tests (``tests/test_deprecations.py``).
MOVED: dict[str, str] = {}


def moved(old: str, new: str) -> Callable[[str], Any]:
    """The old module's ``__getattr__``: warn now, then forward every name to ``new``."""
    MOVED[old] = new
    warnings.warn(f"{old} moved to {new}; import it from there ({old} goes in {REMOVED_IN}).",
                  DeprecationWarning, stacklevel=3)
    module = import_module(new)

    def __getattr__(name: str) -> Any:
        try:
            return getattr(module, name)
        except AttributeError:
            raise AttributeError(f"module {old!r} (moved to {new!r}) has no attribute {name!r}") from None

    return __getattr__
