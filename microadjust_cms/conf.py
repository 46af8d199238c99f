"""Settings access: ``MICROADJUST_<NAME>`` with a fallback to ``defaults.py``."""

from typing import Any

from django.conf import settings

from . import defaults


def get_setting(name: str) -> Any:
    """Return ``settings.MICROADJUST_<name>`` or the default; unknown names are a bug, so raise."""
    try:
        default = getattr(defaults, name)
    except AttributeError:
        raise AttributeError(f"microadjust_cms has no setting named {name!r}") from None
    return getattr(settings, f"MICROADJUST_{name}", default)
