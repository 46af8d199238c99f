"""StreamField blocks: conditions, segment choices and the PersonalizedBlock.

``PersonalizedBlock(child)`` wraps any block: editors add variants (a segment and/or a
condition, plus content) and a required default. The first matching variant renders.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from wagtail import blocks
from wagtail.blocks.struct_block import StructBlockValidationError

from .conditions import Predicate, compile_condition, is_empty
from .context import get_visitor
from .decisions import Decision, decide
from .forms import ConditionFormField


class ConditionBlock(blocks.FieldBlock):
    """A condition edited with the structured editor; stored as its JSON tree."""

    def __init__(self, required: bool = False, help_text: str | None = None, **kwargs: Any):
        self.field = ConditionFormField(required=required, help_text=help_text)
        super().__init__(**kwargs)

    def get_default(self) -> dict:
        return {}

    def to_python(self, value: Any) -> dict:
        return value if isinstance(value, dict) else {}

    def get_prep_value(self, value: Any) -> dict:
        return value if isinstance(value, dict) else {}

    def value_for_form(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        return json.dumps(value) if value else ""

    def value_from_form(self, value: Any) -> Any:
        """The editor posts JSON text; unreadable text stays text so ``clean`` reports it."""
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def get_searchable_content(self, value: Any) -> list:
        return []

    class Meta:
        icon = "cogs"
        default = {}


def segment_block_choices() -> list[tuple[str, str]]:
    from .segments import segment_choices

    return segment_choices()


class SegmentChoiceBlock(blocks.ChoiceBlock):
    """Pick a rule segment by slug (stored as the slug: render needs no SQL)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("choices", segment_block_choices)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)


class VariantValue(blocks.StructValue):
    @cached_property
    def predicate(self) -> Predicate:
        segment = self.get("segment")
        condition = self.get("condition")
        rule = compile_condition(condition)
        if not segment:
            return rule

        def in_segment_and_rule(visitor: Any) -> bool:
            return segment in visitor.segments and rule(visitor)

        return in_segment_and_rule

    def matches(self, visitor: Any) -> bool:
        return self.predicate(visitor)


class VariantBlock(blocks.StructBlock):
    def __init__(self, content_block: blocks.Block, **kwargs: Any) -> None:
        super().__init__([
            ("name", blocks.CharBlock(max_length=50, label=_("Variant name"),
                                      help_text=_("Short and unique in this block, e.g. "
                                                  "'returning'. Reports and triggers use it."))),
            ("segment", SegmentChoiceBlock(label=_("Segment"))),
            ("condition", ConditionBlock(label=_("Condition"),
                                         help_text=_("Rules the visitor must match "
                                                     "(together with the segment, if any)."))),
            ("content", content_block),
        ], **kwargs)

    def clean(self, value: Any) -> Any:
        value = super().clean(value)
        if not value.get("segment") and is_empty(value.get("condition")):
            raise StructBlockValidationError(block_errors={"condition": ValidationError(
                _("Choose a segment or add at least one rule: a variant for everybody "
                  "belongs in the default."))})
        return value

    class Meta:
        value_class = VariantValue
        icon = "user"
        form_classname = "ma-variant"


class PersonalizedValue(blocks.StructValue):
    """Behaviour of a personalized block's value: choose and render the fitting variant."""

    @property
    def block_id(self) -> str:
        return self.get("block_id") or ""

    def variant_named(self, name: str) -> Any:
        for variant in self.get("variants") or ():
            if variant.get("name") == name:
                return variant
        return None

    def decide(self, visitor: Any, *, exclude: str | None = None) -> Decision:
        return decide(self, visitor, exclude=exclude)

    def render_for(self, visitor: Any, context: dict | None = None,
                   decision: Decision | None = None) -> str:
        decision = decision or self.decide(visitor)
        visitor.record_adjustment(self.block_id, decision.variant, decision.reason)
        content_block = self.block.child_blocks["default"]
        html = content_block.render(decision.content, context=context)
        return format_html('<div data-ma-block="{}" data-ma-variant="{}">{}</div>',
                           self.block_id, decision.variant, html)


class PersonalizedBlock(blocks.StructBlock):
    """A block whose content depends on the visitor.

    ``PersonalizedBlock(HeroBlock())`` makes a personalized hero: variants of HeroBlock content,
    each with a segment and/or condition, and a required default HeroBlock.
    """

    def __init__(self, content_block: blocks.Block | None = None, **kwargs: Any) -> None:
        content_block = content_block or blocks.RichTextBlock()
        default_block = content_block
        variant_content = _clone_block(content_block)
        super().__init__([
            ("block_id", blocks.CharBlock(required=False, form_classname="ma-block-id",
                                          label=_("Block id"),
                                          help_text=_("Filled in automatically; tracking and "
                                                      "reports use it."))),
            ("variants", blocks.ListBlock(VariantBlock(variant_content), label=_("Variants"),
                                          help_text=_("The first variant that matches the "
                                                      "visitor is shown."))),
            ("default", default_block),
        ], **kwargs)
        self.child_blocks["default"].label = _("Default (everybody else)")

    def get_default(self) -> Any:
        value = super().get_default()
        value["block_id"] = uuid.uuid4().hex[:12]
        return value

    def to_python(self, value: dict) -> PersonalizedValue:
        result = super().to_python(value)
        if not result.get("block_id"):
            digest = hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode())
            result["block_id"] = digest.hexdigest()[:12]
        return result

    def clean(self, value: Any) -> Any:
        value = super().clean(value)
        if not value.get("block_id"):
            value["block_id"] = uuid.uuid4().hex[:12]
        names = [v.get("name") for v in value.get("variants") or ()]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates or "default" in names:
            raise StructBlockValidationError(block_errors={"variants": ValidationError(
                _("Variant names must be unique and not 'default': %(names)s")
                % {"names": ", ".join(sorted(duplicates | ({"default"} & set(names))))})})
        return value

    def render(self, value: PersonalizedValue, context: dict | None = None) -> str:
        request = (context or {}).get("request")
        if request is None:  # no request (e.g. search indexing): everybody gets the default
            html = self.child_blocks["default"].render(value["default"], context=context)
            return format_html('<div data-ma-block="{}" data-ma-variant="default">{}</div>',
                               value.block_id, html)
        visitor = get_visitor(request)
        page = (context or {}).get("page")
        if page is not None:
            visitor.set_page(page)
        return value.render_for(visitor, context)

    class Meta:
        value_class = PersonalizedValue
        icon = "group"
        label = _("Personalized block")
        form_classname = "ma-personalized"


def _clone_block(block: blocks.Block) -> blocks.Block:
    """A fresh copy of a block definition (one block instance must not sit in two places)."""
    name, args, kwargs = block.deconstruct()
    cls = type(block)
    try:
        return cls(*args, **kwargs)
    except TypeError:
        return block


__all__ = ["ConditionBlock", "PersonalizedBlock", "SegmentChoiceBlock", "VariantBlock"]
