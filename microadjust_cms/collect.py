"""Moved to ``microadjust_cms.tracking.collect`` in 0.2: this path warns and goes in 0.3."""

from microadjust_cms._moved import moved

__getattr__ = moved(__name__, "microadjust_cms.tracking.collect")
