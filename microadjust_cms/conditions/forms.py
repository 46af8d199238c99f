"""Form pieces for conditions: the structured editor widget and a validating field."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.urls import NoReverseMatch, reverse

from . import ConditionError, is_empty, validate_condition


class ConditionWidget(forms.Widget):
    """A structured rule editor (no JSON typing). The value travels in a hidden textarea that
    the ``ma-condition`` Stimulus controller keeps in sync with the visual editor."""

    template_name = "microadjust_cms/widgets/condition_widget.html"

    class Media:
        js = ["microadjust_cms/js/condition-editor.js"]
        css = {"all": ["microadjust_cms/css/condition-editor.css"]}

    def format_value(self, value: Any) -> str:
        if value in (None, ""):
            return ""
        if isinstance(value, str):
            return value
        return json.dumps(value)

    def get_context(self, name: str, value: Any, attrs: dict | None) -> dict:
        context = super().get_context(name, value, attrs)
        try:
            url = reverse("microadjust_admin:signals")
        except NoReverseMatch:
            url = ""
        context["widget"]["catalogue_url"] = url
        return context


class ConditionFormField(forms.JSONField):
    """JSON in, validated condition out; errors name the rule at fault."""

    widget = ConditionWidget

    def __init__(self, *, allow_empty: bool = True, **kwargs: Any) -> None:
        self.allow_empty = allow_empty
        kwargs.setdefault("widget", ConditionWidget)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> str:
        """JSON text for the widget: already-text values (the editor's own post, unreadable
        input shown back with its error) pass through instead of being encoded twice."""
        if isinstance(value, str):
            return value
        if value in (None, {}):
            return ""
        return json.dumps(value, ensure_ascii=False)

    def to_python(self, value: Any) -> Any:
        if value in ("", None):
            return {}
        try:
            return super().to_python(value)
        except ValidationError:
            raise ValidationError("The condition could not be read. Rebuild it in the editor.",
                                  code="invalid") from None

    def validate(self, value: Any) -> None:
        if is_empty(value):
            if self.required and not self.allow_empty:
                raise ValidationError("Add at least one rule.", code="required")
            return
        check_condition(value)


def check_condition(value: Any) -> None:
    """Turn ``ConditionError`` into a form ``ValidationError`` with one message per rule."""
    try:
        validate_condition(value)
    except ConditionError as exc:
        raise ValidationError([ValidationError(m, code="invalid_rule") for m in exc.errors]) \
            from None
