"""Rule segments: named conditions editors manage as snippets."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from ..conditions import ConditionError, is_empty, rules_over, validate_condition
from ..conditions.fields import ConditionField


def referenced_segments(condition: object) -> set[str]:
    """Slugs a condition refers to through the ``segment`` signal."""
    found: set[object] = set()
    for rule in rules_over(condition, "segment"):
        value = rule.get("value")
        found.update(value if isinstance(value, list) else [value])
    return {s for s in found if isinstance(s, str)}


class Segment(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    slug = models.SlugField(_("slug"), max_length=100, unique=True,
                            help_text=_("Used by templates: {% ifvisitor segment=\"slug\" %}"))
    description = models.TextField(_("description"), blank=True)
    condition = ConditionField(_("condition"), default=dict, blank=True,
                                 help_text=_("Visitors matching these rules are in the segment."))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")

    def __str__(self) -> str:
        return self.name

    def clean_fields(self, exclude: object = None) -> None:
        """Check the condition here, not in ``clean``: when the form field already rejected it,
        Django excludes it and the editor sees that one error, not a second about a blank."""
        errors: dict[str, list] = {}
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if "condition" not in (exclude or ()) and "condition" not in errors:
            try:
                self._check_condition()
            except ValidationError as exc:
                errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def _check_condition(self) -> None:
        if is_empty(self.condition):
            raise ValidationError({"condition": _("Add at least one rule.")})
        try:
            validate_condition(self.condition)
        except ConditionError as exc:
            raise ValidationError({"condition": exc.errors}) from None
        self._check_cycles()

    def _check_cycles(self) -> None:
        graph = {s.slug: referenced_segments(s.condition)
                 for s in Segment.objects.exclude(pk=self.pk)}
        graph[self.slug] = referenced_segments(self.condition)
        seen: set[str] = set()
        stack = list(graph[self.slug])
        while stack:
            slug = stack.pop()
            if slug == self.slug:
                raise ValidationError({"condition": _(
                    "This segment refers to itself (directly or through other segments).")})
            if slug not in seen:
                seen.add(slug)
                stack.extend(graph.get(slug, ()))
