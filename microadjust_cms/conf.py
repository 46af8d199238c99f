"""Settings access: ``MICROADJUST_<NAME>`` with a fallback to ``defaults.py``."""

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from . import defaults

_cache: dict[str, Any] = {}


def get_setting(name: str) -> Any:
    """Return ``settings.MICROADJUST_<name>`` or the default; unknown names are a bug, so raise.

    Values are cached (the render path reads some per block); ``override_settings`` clears it.
    """
    try:
        return _cache[name]
    except KeyError:
        pass
    try:
        default = getattr(defaults, name)
    except AttributeError:
        raise AttributeError(f"microadjust_cms has no setting named {name!r}") from None
    value = _cache[name] = getattr(settings, f"MICROADJUST_{name}", default)
    return value


@receiver(setting_changed)
def _clear_cache(**kwargs: Any) -> None:
    _cache.clear()
