"""``ConditionField``: a JSON column holding a condition, edited with the structured condition
editor (``conditions.forms``)."""

from __future__ import annotations

from django.db import models


class ConditionField(models.JSONField):
    """A JSON column edited with the structured condition editor."""

    def formfield(self, **kwargs):
        from .forms import ConditionFormField

        return super().formfield(**{"form_class": ConditionFormField, **kwargs})
