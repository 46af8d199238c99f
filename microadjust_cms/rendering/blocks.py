"""StreamField blocks: conditions, segment choices and the PersonalizedBlock.

``PersonalizedBlock(child)`` wraps any block: editors add variants (a segment and/or a
condition, plus content) and a required default. The first matching variant renders.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.functional import cached_property
from django.utils.html import escape
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from wagtail import blocks
from wagtail.blocks.list_block import ListValue
from wagtail.blocks.struct_block import StructBlockValidationError

from ..behaviour import OPT_GOAL_RE
from ..conditions import is_empty
from ..conditions.forms import ConditionFormField
from ..experiments.recording import settle
from ..segments.membership import segment_choices
from ..visitor.context import get_visitor
from .decisions import (
    OPT_ATTRIBUTE,
    Decision,
    Program,
    compile_program,
    decide,
    first_match,
    program_for_revision,
    program_for_stored,
    programs_by_revision,
    rules_revision,
)
from .optimizer import Optimizer, optimizer_from
from .stream_cache import SharedStored, thaw


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


class SegmentChoiceBlock(blocks.FieldBlock):
    """Pick a rule segment by slug. Stored as the slug, so render needs no SQL; the choices
    are read only when an editor's form is built or validated."""

    def __init__(self, required: bool = False, help_text: str | None = None, **kwargs: Any):
        self.field = forms.ChoiceField(
            choices=lambda: [("", "---------")] + segment_choices(),
            required=required, help_text=help_text)
        super().__init__(**kwargs)

    def get_default(self) -> str:
        return ""

    def to_python(self, value: Any) -> str:
        return value or ""

    def get_searchable_content(self, value: Any) -> list:
        return []

    def deconstruct(self) -> tuple:
        return ("microadjust_cms.rendering.blocks.SegmentChoiceBlock", (), {})

    class Meta:
        icon = "group"


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
        icon = "user"
        form_classname = "ma-variant"


class TriggerBlock(blocks.StructBlock):
    """What the tracker does with the block after the page loaded: swap it in place when it is
    abandoned, or reveal another variant after some seconds on the page (fragment API)."""

    on_abandon = blocks.ChoiceBlock(
        choices=[("", _("Nothing")), ("best", _("Show the best other match")),
                 ("variant", _("Show a named variant"))],
        required=False, label=_("When abandoned"),
        help_text=_("Abandoned: the visitor scrolled past it without engaging."))
    abandon_variant = blocks.CharBlock(required=False, max_length=50,
                                       label=_("Variant to show when abandoned"))
    reveal_after = blocks.IntegerBlock(required=False, min_value=1, max_value=3600,
                                       label=_("Reveal after (seconds on the page)"))
    reveal_variant = blocks.CharBlock(required=False, max_length=50,
                                      label=_("Variant to reveal"),
                                      help_text=_("Empty: the best other match."))
    cap = blocks.ChoiceBlock(
        choices=[("", _("Counts toward the frequency caps")), ("never", _("Never capped"))],
        required=False, label=_("Frequency caps"),
        help_text=_("Never capped: this block is personalized even after the page's or the "
                    "visit's cap is reached (it still counts toward them)."))

    class Meta:
        icon = "time"
        label = _("Triggers and caps")
        collapsed = True
        form_classname = "ma-triggers"


class OptimizeBlock(blocks.StructBlock):
    """Auto-optimize (``optimizer``): Thompson sampling among the matching variants, per
    context, on a goal. Off by default; stored only when switched on."""

    enabled = blocks.BooleanBlock(
        required=False, label=_("Auto-optimize"),
        help_text=_("Among the variants that match (and the default), show the one that reaches "
                    "the goal best for visitors like this one, learning as events arrive."))
    goal = blocks.CharBlock(
        required=False, max_length=60, default="click", label=_("Goal"),
        help_text=_("'click' (a click on this block) or the name of a conversion "
                    "(data-ma-goal, e.g. 'purchase')."))
    context = blocks.ChoiceBlock(
        choices=[("cluster", _("Per cluster")), ("segment", _("In or out of a segment")),
                 ("all", _("Everyone together"))],
        default="cluster", required=False, label=_("Learn separately"))
    segment = SegmentChoiceBlock(label=_("Segment (for 'in or out of a segment')"))
    min_share = blocks.FloatBlock(
        required=False, min_value=0.0, max_value=0.2, default=0.05,
        label=_("Minimum share per variant"),
        help_text=_("Each candidate is shown at least this share of the time while learning "
                    "(0 to 0.2)."))

    def clean(self, value: Any) -> Any:
        value = super().clean(value)
        if not value.get("enabled"):
            return value
        errors = {}
        if not OPT_GOAL_RE.match(value.get("goal") or "click"):
            errors["goal"] = ValidationError(
                _("Letters, digits and _ . : - only (at most 60), e.g. 'click' or 'purchase'."))
        if value.get("context") == "segment" and not value.get("segment"):
            errors["segment"] = ValidationError(_("Choose the segment to learn in and out of."))
        if errors:
            raise StructBlockValidationError(block_errors=errors)
        return value

    class Meta:
        icon = "pick"
        label = _("Auto-optimize")
        collapsed = True
        form_classname = "ma-optimize"


def trigger_attributes(triggers: Any) -> str:
    """The wrapper's trigger attributes from stored trigger settings (the tracker reads them;
    what to show is decided by the fragment API from the same settings)."""
    if not isinstance(triggers, dict):
        return ""
    attributes = ' data-ma-abandon="1"' if triggers.get("on_abandon") else ""
    reveal = triggers.get("reveal_after")
    if isinstance(reveal, int) and not isinstance(reveal, bool) and 0 < reveal <= 3600:
        attributes += f' data-ma-reveal="{reveal}"'
    return attributes


@lru_cache(maxsize=4096)
def _wrapper_start(block_id: str, variant: str, attributes: str) -> str:
    return (f'<div data-ma-block="{escape(block_id)}" data-ma-variant="{escape(variant)}"'
            f'{attributes}>')


def wrap(block_id: str, variant: str, html: str, attributes: str = "") -> SafeString:
    """The element the tracker finds: ``data-ma-block`` and ``data-ma-variant`` (escaped), plus
    ``attributes`` (already escaped: content type, tags, triggers)."""
    if type(html) is SafeString:  # what Block.render returns: no __html__ call per block
        inner = html
    else:
        inner = html.__html__() if hasattr(html, "__html__") else escape(html)
    return SafeString(_wrapper_start(block_id, variant, attributes) + inner + "</div>")


#: A NamedTuple built without its Python-level ``__new__`` (per block, per page view).
_new_decision = tuple.__new__

#: What ``PersonalizedValue.triggers`` answers for a block without trigger settings.
_NO_TRIGGERS: Mapping[str, Any] = MappingProxyType({})


class _Pending:
    """Marks a child of a loaded value still in its stored form (kept in ``_stored``):
    rendering converts only the chosen content."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<not converted yet>"


_PENDING = _Pending()


def _item_value(item: Any) -> Any:
    """A stored variant's fields: compact items are the fields themselves (plus "id"); items
    saved before that are ListBlock's {"type": "item", "value": ..., "id": ...}."""
    if isinstance(item, dict) and item.get("type") == "item" and "value" in item:
        return item["value"]
    return item


#: Variant fields left out of the stored form when empty.
_OMITTED_WHEN_EMPTY = ("segment", "condition")


def _compact_variant(item: Any) -> Any:
    """One variant as stored: its fields and list item id in one flat dict, an empty segment or
    condition left out. Every page view parses every variant, so fewer JSON objects is faster
    (about a fifth of the parse time of a block with three variants)."""
    value = _item_value(item)
    if not isinstance(value, dict):
        return item
    stored = {key: field for key, field in value.items()
              if field or key not in _OMITTED_WHEN_EMPTY}
    if isinstance(item, dict) and item.get("id"):
        stored["id"] = item["id"]
    return stored


def _list_block_items(items: Any) -> Any:
    """Stored variants in ListBlock's item format (compact items keep their ids), for
    ``ListBlock.to_python``: the admin and comments need the ids to stay stable."""
    if not isinstance(items, list):
        return items
    return [{"type": "item", "value": {k: v for k, v in item.items() if k != "id"},
             "id": item["id"]}
            if isinstance(item, dict) and "type" not in item and item.get("id") else item
            for item in items]


@lru_cache(maxsize=1)
def _pure_conversions() -> frozenset:
    """``to_python`` and ``bulk_to_python`` implementations that read the stored data alone: no
    database, no lazy parts, no value class of the site's own."""
    from wagtail.blocks import field_block

    return frozenset({
        blocks.Block.to_python, blocks.Block.bulk_to_python,
        field_block.ChoiceBlock.to_python, field_block.MultipleChoiceBlock.to_python,
        field_block.RichTextBlock.to_python, field_block.RawHTMLBlock.to_python,
        field_block.DecimalBlock.to_python, field_block.DateBlock.to_python,
        field_block.TimeBlock.to_python, field_block.DateTimeBlock.to_python,
        blocks.StructBlock.to_python, blocks.StructBlock.bulk_to_python,
        blocks.ListBlock.to_python, blocks.ListBlock.bulk_to_python,
        blocks.StreamBlock.to_python, blocks.StreamBlock.bulk_to_python,
    })


def _shares_conversions(block: blocks.Block) -> bool:
    """True when the block's converted values depend on nothing but the stored data, so one
    conversion can serve every request: Wagtail's plain field blocks (not choosers, which read
    the database), rich text, and structs, lists and streams of those (structs with the plain
    ``StructValue``: a site's own value class may cache what it computes). Rendering reads such
    values and never changes them; ``_settled`` binds a stream's children once."""
    pure = _pure_conversions()
    cls = type(block)
    if cls.to_python not in pure or cls.bulk_to_python not in pure:
        return False
    if isinstance(block, blocks.StructBlock):
        if block.meta.value_class is not blocks.StructValue:
            return False
        return all(_shares_conversions(child) for child in block.child_blocks.values())
    if isinstance(block, blocks.ListBlock):
        return _shares_conversions(block.child_block)
    if isinstance(block, blocks.StreamBlock):
        return all(_shares_conversions(child) for child in block.child_blocks.values())
    return not hasattr(block, "child_blocks")


def _settled(value: Any) -> Any:
    """The value with every stream in it bound (``StreamValue`` converts its children when first
    read, in place): after this, rendering it changes nothing."""
    if isinstance(value, blocks.StreamValue):
        for child in value:
            _settled(child.value)
    elif isinstance(value, ListValue):
        for item in value:
            _settled(item)
    elif isinstance(value, blocks.StructValue):
        for item in value.values():
            _settled(item)
    return value


class PersonalizedValue(blocks.StructValue):
    """Behaviour of a personalized block's value: choose and render the fitting variant.

    Loaded from the database, the variants and default stay unconverted until something asks
    for them; ``decide`` reads the stored names and conditions and converts only the content it
    picks. Any dict access converts on the way, so Wagtail's admin sees ordinary values.
    """

    raw_variants: list | None = None
    #: The stored value this one was loaded from (children marked ``_PENDING`` are in it).
    _stored: dict = {}  # noqa: RUF012 (never mutated; replaced per instance)
    #: The stored rules revision (see ``decisions.rules_revision``), when the block was saved.
    rules_revision: str = ""
    #: (block id, rules revision) as loaded: the key of the compiled program, built once.
    _program_key: tuple[str, str] | None = None
    #: Loaded from the shared stored data (``stream_cache``): what rendering reads while the value
    #: is as loaded, derived once per stored text. The variants' and the default's content as
    #: converted (only for content blocks whose values can be shared: ``_shares_conversions``;
    #: a 1-tuple for the default), and the wrapper attributes.
    _shared_contents: tuple | None = None
    _shared_default: tuple = ()
    _wrapper: str | None = None
    #: Its compiled program (the one ``programs_by_revision`` has for ``_program_key``).
    _program: Program | None = None
    #: Its auto-optimize settings (``optimizer``), read once.
    _optimizer: Any = _PENDING
    #: Shared values only: every choice renders from what was derived once (contents shared,
    #: program compiled, auto-optimize off), by ``PersonalizedBlock.render``'s short path.
    _renders_shared: bool = False

    def as_loaded(self) -> bool:
        """Nothing read through dict access or replaced since it was loaded: what rendering
        derives once per stored text still describes it."""
        get = dict.get
        key = self._program_key
        return (key is not None and get(self, "block_id") is key[0]
                and get(self, "variants") is _PENDING and get(self, "default") is _PENDING
                and get(self, "triggers") is _PENDING and get(self, "optimize") is _PENDING)

    @property
    def stored(self) -> bool:
        """True while the variants are still the stored data (nothing converted or replaced)."""
        return dict.get(self, "variants") is _PENDING and self.raw_variants is not None

    def _converted(self, key: str) -> Any:
        value = dict.__getitem__(self, key)
        if value is _PENDING:
            child = self.block.child_blocks[key]
            if key in self._stored:
                raw = thaw(self._stored[key])  # a plain copy of shared data: the caller may edit
                value = child.to_python(_list_block_items(raw) if key == "variants" else raw)
            else:
                value = child.get_default()
            self[key] = value
        return value

    def __getitem__(self, key: str) -> Any:
        return self._converted(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self._converted(key) if key in self else default

    def items(self):  # type: ignore[override]
        return [(key, self._converted(key)) for key in self.keys()]

    def values(self):  # type: ignore[override]
        return [self._converted(key) for key in self.keys()]

    @property
    def block_id(self) -> str:
        return dict.get(self, "block_id") or ""

    def variant_items(self) -> list:
        """Stored variant dicts while unconverted (the usual case at render), else converted
        variant values; both answer ``get``. Positions match the stored list."""
        if self.stored:
            return [_item_value(item) for item in self.raw_variants or ()]
        return list(self.get("variants") or [])

    def program(self) -> Program:
        """The compiled variant tests: found by (block id, stored rules revision); blocks stored
        without a revision are compared with the cached copy; form values are compiled as is."""
        key = self._program_key
        # The usual render: stored variants, block id as loaded, program compiled: one look-up
        # (none for a value loaded from the shared stored data: its program is kept with it).
        if (key is not None and dict.get(self, "variants") is _PENDING
                and dict.get(self, "block_id") is key[0]):
            program = self._program or programs_by_revision.get(key)
            if program is not None:
                return program
        if self.stored:
            revision = self.rules_revision
            if revision:
                return program_for_revision(self.block_id, revision, self.variant_items)
            return program_for_stored(self.block_id, self.raw_variants, self.variant_items)
        return compile_program(self.variant_items(), self.block_id)

    def default_content(self) -> Any:
        """The default's content, for rendering: converted from the stored data while that is
        unconverted (as ``variant_content``), without keeping it (dict access converts anew)."""
        if dict.get(self, "default") is _PENDING and "default" in self._stored:
            shared = self._shared_default
            if shared:
                return shared[0]
            # ``thaw``: a block's ``to_python`` may change what it is given (TableBlock does).
            return self.block.child_blocks["default"].to_python(thaw(self._stored["default"]))
        return self["default"]

    def variant_content(self, position: int) -> Any:
        if dict.get(self, "variants") is _PENDING and self.raw_variants is not None:  # stored
            shared = self._shared_contents
            if shared is not None:
                return shared[position]
            content = _item_value(self.raw_variants[position]).get("content")
            return self.block.child_blocks["default"].to_python(thaw(content))
        return self["variants"][position]["content"]

    def decide(self, visitor: Any, *, exclude: str | None = None,
               prefer: str | None = None) -> Decision:
        return decide(self, visitor, exclude=exclude, prefer=prefer)

    @property
    def triggers(self) -> Mapping[str, Any]:
        """The trigger settings as stored (read without converting the value, and without a copy
        per render: read only); empty when none were saved, the usual case."""
        triggers = dict.get(self, "triggers")
        if triggers is _PENDING:
            return self._stored.get("triggers") or _NO_TRIGGERS
        return dict(triggers) if triggers else _NO_TRIGGERS

    @property
    def optimizer(self) -> Optimizer | None:
        """The auto-optimize settings (None when off): read from the stored data while it is
        unconverted, once a value (a shared value carries them from ``_prepare``)."""
        found = self._optimizer
        if found is _PENDING:
            if dict.get(self, "optimize", _PENDING) is _PENDING:
                raw = self._stored.get("optimize")
            else:
                raw = dict(self["optimize"] or {})
            found = self._optimizer = optimizer_from(raw)
        return found

    def wrapper_attributes(self) -> str:
        if self._wrapper is not None and dict.get(self, "triggers") is _PENDING:
            return self._wrapper
        triggers = self.triggers
        attributes = self.block.content_attributes
        return attributes + trigger_attributes(triggers) if triggers else attributes

    def render_for(self, visitor: Any, context: dict | None = None,
                   decision: Decision | None = None) -> SafeString:
        """Decide (unless told), record the adjustment, render the content in its wrapper."""
        program = self.program()  # once: decide and settle both need it
        variant, content, reason = settle(
            self, visitor, decision or decide(self, visitor, program=program), program.bindings)
        block_id = dict.get(self, "block_id") or ""  # ``block_id``, without the property call
        visitor.record_adjustment(block_id, variant, reason)
        html = self.block.child_blocks["default"].render(content, context=context)
        attributes = self.wrapper_attributes()
        if reason[:8] == "optimize":  # the tracker counts its impressions and goals (optimizer)
            attributes += f' data-ma-opt="{escape(visitor.memo[OPT_ATTRIBUTE, block_id])}"'
        return wrap(block_id, variant, html, attributes)


class PersonalizedBlock(blocks.StructBlock):
    """A block whose content depends on the visitor.

    ``PersonalizedBlock(HeroBlock())`` makes a personalized hero: variants of HeroBlock content,
    each with a segment and/or condition, and a required default HeroBlock. ``content_type``
    ("video", "article"...) and ``tags`` say what the block holds (from the keyword arguments,
    else the content block's ``Meta``): the tracker reports them and ``content_affinity`` learns
    from them.
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
            ("triggers", TriggerBlock()),
            ("optimize", OptimizeBlock()),
        ], **kwargs)
        self.child_blocks["default"].label = _("Default (everybody else)")
        content_type = self.meta.content_type or getattr(content_block.meta, "content_type", "")
        tags = self.meta.tags or getattr(content_block.meta, "tags", ()) or ()
        #: ``data-ma-kind`` / ``data-ma-tags`` on the wrapper, escaped once.
        self.content_attributes = (
            (f' data-ma-kind="{escape(content_type)}"' if content_type else "")
            + (f' data-ma-tags="{escape(" ".join(tags))}"' if tags else ""))

    def get_default(self) -> Any:
        value = super().get_default()
        value["block_id"] = uuid.uuid4().hex[:12]
        return value

    def to_python(self, value: dict) -> PersonalizedValue:
        if type(value) is SharedStored:  # read from the database and cached (stream_cache)
            prepared = value.prepared
            if prepared is None or prepared[0] is not self:
                prepared = value.prepared = self._prepare(value)
            # A fresh value per request from what was derived once (``update``: an OrderedDict's
            # own, which keeps its key order; ``dict.update`` would leave ``keys()`` empty).
            result = PersonalizedValue.__new__(PersonalizedValue)
            result.update(prepared[1])
            result.__dict__.update(prepared[2])
            return result
        return self._to_python(value)

    def _prepare(self, value: SharedStored) -> tuple[PersonalizedBlock, dict, dict]:
        """(this block, the value's keys, its attributes) for a shared stored value; the
        attributes include what rendering reads (see ``PersonalizedValue._shared_contents``)."""
        loaded = self._to_python(value)
        attributes = dict(loaded.__dict__)
        attributes["_wrapper"] = loaded.wrapper_attributes()
        attributes["_optimizer"] = loaded.optimizer
        if loaded._program_key is not None:
            attributes["_program"] = loaded.program()
        if self.shares_conversions:
            content_block = self.child_blocks["default"]
            try:
                if loaded.raw_variants is not None:
                    attributes["_shared_contents"] = tuple(
                        _settled(content_block.to_python(_item_value(item).get("content")))
                        for item in loaded.raw_variants)
                if "default" in value:
                    attributes["_shared_default"] = (_settled(content_block.to_python(value["default"])),)
            except Exception:  # stored data the block cannot read: converted per request, as before
                attributes.pop("_shared_contents", None)
                attributes.pop("_shared_default", None)
        attributes["_renders_shared"] = bool(
            attributes.get("_program") is not None and attributes.get("_shared_contents") is not None
            and attributes.get("_shared_default") and attributes["_optimizer"] is None)
        return self, {key: dict.__getitem__(loaded, key) for key in dict.keys(loaded)}, attributes

    @cached_property
    def shares_conversions(self) -> bool:
        """Whether converted content can be shared between requests (``_shares_conversions``)."""
        return _shares_conversions(self.child_blocks["default"])

    def _to_python(self, value: dict) -> PersonalizedValue:
        if not isinstance(value, dict):
            value = {}
        block_id = value.get("block_id")
        if not block_id:
            digest = hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode())
            block_id = digest.hexdigest()[:12]
        # Built key by key: StructValue's generic __init__ costs more than the rest of this
        # method, and every personalized block on every page view comes through here.
        result = PersonalizedValue.__new__(PersonalizedValue)
        result["block_id"] = block_id
        result["variants"] = (_PENDING if "variants" in value
                              else self.child_blocks["variants"].get_default())
        result["default"] = (_PENDING if "default" in value
                             else self.child_blocks["default"].get_default())
        result["triggers"] = _PENDING  # usually read raw (``triggers``), never converted
        result["optimize"] = _PENDING  # read raw too (``optimizer``)
        result.block = self
        result._stored = value
        variants = value.get("variants")
        if isinstance(variants, list):
            result.raw_variants = variants
            revision = value.get("rules_rev")
            if isinstance(revision, str):
                result.rules_revision = revision
                if revision:
                    result._program_key = (block_id, revision)
        return result

    def get_prep_value(self, value: Any) -> dict:
        """Stored form: variants compact (see ``_compact_variant``), plus ``rules_rev``, the
        checksum that keys the compiled program."""
        prepared = super().get_prep_value(value)
        variants = [_compact_variant(item) for item in prepared.get("variants") or ()]
        prepared["variants"] = variants
        prepared["rules_rev"] = rules_revision(variants)
        triggers = prepared.get("triggers") or {}
        if isinstance(triggers, dict) and "cap" in triggers and not triggers["cap"]:
            del triggers["cap"]  # the usual "counts toward the caps": stored as before caps existed
        if not any(triggers.values()):
            prepared.pop("triggers", None)  # none set: every page view parses less
        optimize = prepared.get("optimize")
        if not (isinstance(optimize, dict) and optimize.get("enabled")):
            prepared.pop("optimize", None)  # off (the usual case): not stored
        return prepared

    def normalize(self, value: Any) -> Any:
        if isinstance(value, dict) and not isinstance(value, blocks.StructValue):
            value = {k: v for k, v in value.items() if k in self.child_blocks}
        return super().normalize(value)

    def bulk_to_python(self, values: list) -> list[PersonalizedValue]:
        return [self.to_python(value) for value in values]

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
        self._clean_triggers(value.get("triggers") or {}, {*names, "default"})
        return value

    def _clean_triggers(self, triggers: Any, names: set) -> None:
        errors = {}
        if triggers.get("on_abandon") == "variant" and not triggers.get("abandon_variant"):
            errors["abandon_variant"] = ValidationError(_("Name the variant to show."))
        for field in ("abandon_variant", "reveal_variant"):
            name = triggers.get(field)
            if name and name not in names:
                errors[field] = ValidationError(
                    _("No variant named %(name)s in this block (variants: %(names)s).")
                    % {"name": name, "names": ", ".join(sorted(n for n in names if n))})
        if triggers.get("reveal_variant") and not triggers.get("reveal_after"):
            errors["reveal_after"] = ValidationError(_("Say after how many seconds to reveal."))
        if errors:
            raise StructBlockValidationError(block_errors={
                "triggers": StructBlockValidationError(block_errors=errors)})

    def render(self, value: PersonalizedValue, context: dict | None = None) -> str:
        request = (context or {}).get("request")
        if request is None:  # no request (e.g. search indexing): everybody gets the default
            html = self.child_blocks["default"].render(value["default"], context=context)
            return wrap(value.block_id, "default", html, value.wrapper_attributes())
        visitor = request.__dict__.get("visitor") or get_visitor(request)
        if visitor.page_key is None:
            page = context.get("page")  # type: ignore[union-attr]
            if page is not None:
                visitor.set_page(page)
        if value._renders_shared and value.as_loaded() and not getattr(visitor, "held_out", False):
            return self._render_shared(value, visitor, context)
        return value.render_for(visitor, context)

    def _render_shared(self, value: PersonalizedValue, visitor: Any, context: dict) -> SafeString:
        """``render_for`` for the usual block, a shared value as loaded: ``decide``'s first match
        (no holdout, trigger or auto-optimize to ask about) over the contents converted once per
        stored text, then the same ``settle``, adjustment and wrapper."""
        program = value._program
        found = first_match(visitor, program)  # type: ignore[arg-type]
        if found is None:
            decision = _new_decision(Decision, ("default", value._shared_default[0], "default"))
        else:
            decision = _new_decision(Decision, (found[0], value._shared_contents[found[1]],  # type: ignore[index]
                                                "match"))
        variant, content, reason = settle(value, visitor, decision, program.bindings)  # type: ignore[union-attr]
        block_id = value.block_id
        visitor.record_adjustment(block_id, variant, reason)
        html = self.child_blocks["default"].render(content, context=context)
        return wrap(block_id, variant, html, value._wrapper or "")

    class Meta:
        value_class = PersonalizedValue
        content_type = ""
        tags = ()
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


__all__ = ["ConditionBlock", "PersonalizedBlock", "SegmentChoiceBlock", "TriggerBlock",
           "VariantBlock"]
