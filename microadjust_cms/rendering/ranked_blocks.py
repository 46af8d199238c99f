"""``RankedBlock(child)``: a list of items shown in order of predicted engagement.

Editors fill in items (the child content, a content type and tags) in their own order. At
render the active engagement model scores every item for this visitor in one batched call
(``learning.scoring.rank``) and the items come out best first, the top one highlighted. The
editor's order stands, and nothing is highlighted, when there is no model, it is stale or
thin, the visitor opted out of tracking, or the profile store is down. Every item is wrapped
for the tracker (``data-ma-block`` per item, ``data-ma-kind``, ``data-ma-tags``,
``data-ma-pos``), so its impressions, clicks and dwell train the next model; ``data-ma-variant``
is "ranked" or "editor", so the two orders can be compared.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from functools import lru_cache
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.template.loader import render_to_string
from django.utils.html import escape
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from wagtail import blocks

from ..learning.scoring import MODEL, Item, Ranking, rank
from ..tracking.schema import CONTENT_KEY_RE, MAX_TAGS
from ..visitor.context import get_visitor

#: The variant the tracker reports for an item: ordered by the model, or as the editor put it.
RANKED, EDITOR = "ranked", "editor"
_ITEM_KEY_RE = re.compile(r"[^A-Za-z0-9]")
#: The editor's field: ``CONTENT_KEY_RE`` as it was (``$``), since a block's validators are part of
#: its migrations: changing the pattern would ask every site for a migration of its StreamFields.
#: The form strips whitespace first, so the newline ``$`` lets through never arrives here.
_CONTENT_TYPE_FIELD_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def validate_tags(value: str) -> None:
    tags = (value or "").split()
    if len(tags) > MAX_TAGS or not all(CONTENT_KEY_RE.match(t) for t in tags):
        raise ValidationError(_("At most %(n)s space-separated tags: lower-case letters, digits, - "
                                "and _ (at most 32 each).") % {"n": MAX_TAGS})


class RankedItemBlock(blocks.StructBlock):
    def __init__(self, content_block: blocks.Block, **kwargs: Any) -> None:
        super().__init__([
            ("content", content_block),
            ("content_type", blocks.CharBlock(
                max_length=32, label=_("Content type"), validators=[RegexValidator(
                    _CONTENT_TYPE_FIELD_RE, _("Lower-case letters, digits, - and _ (e.g. video)."))],
                help_text=_("What the item is, e.g. video, article, deal: the model learns "
                            "who engages with which."))),
            ("tags", blocks.CharBlock(required=False, max_length=170, label=_("Tags"),
                                      validators=[validate_tags],
                                      help_text=_("Space-separated, e.g. 'travel budget'."))),
        ], **kwargs)

    class Meta:
        icon = "list-ul"


class RankedOptionsBlock(blocks.StructBlock):
    highlight_top = blocks.BooleanBlock(required=False, default=True, label=_("Highlight the top item"),
                                        help_text=_("Only when the model ordered the items."))

    class Meta:
        icon = "cog"
        label = _("Options")
        collapsed = True


@lru_cache(maxsize=4096)
def _item_meta(block_id: str, original: str, index: int, content_type: str,
               tags: str) -> tuple[str, Item, tuple[str, str]]:
    """(tracker key, model item, escaped wrapper attributes before and after the variant) of
    one item: cached, so a render escapes nothing it escaped before."""
    key = f"{block_id}-{_ITEM_KEY_RE.sub('', original)[:8] or index}"
    after = ((f' data-ma-kind="{escape(content_type)}"' if content_type else "")
             + (f' data-ma-tags="{escape(" ".join(tags.split()))}"' if tags.strip() else ""))
    return key, Item(content_type, tuple(tags.split()), index), (f'data-ma-block="{escape(key)}"', after)


class RankedValue(blocks.StructValue):
    """Behaviour of a RankedBlock's value: rank the items for a visitor and render them."""

    @property
    def block_id(self) -> str:
        return self.get("block_id") or ""

    def item_meta(self) -> list[tuple[str, Item, tuple[str, str]]]:
        """Per item, in the editor's order: its tracker key, what the model scores, and its
        wrapper's tracker attributes, from one cached helper (they change only with an edit)."""
        items = self.get("items") or ()
        bound = getattr(items, "bound_blocks", None) or ()
        block_id = self.block_id[:55]
        return [_item_meta(block_id, (getattr(bound[index], "original_id", None) if index < len(bound) else None)
                           or str(index), index, item.get("content_type") or "", item.get("tags") or "")
                for index, item in enumerate(items)]

    def item_keys(self) -> list[str]:
        """A tracker block id per item (``<block id>-<item key>``), stable across saves: from the
        list item's id, else its place."""
        return [key for key, _item, _attrs in self.item_meta()]

    def items_for_model(self) -> list[Item]:
        """What the model scores: content type, tags and the editor's position of each item."""
        return [item for _key, item, _attrs in self.item_meta()]

    def ranking(self, visitor: Any, meta: list[tuple[str, Item, tuple[str, str]]] | None = None) -> Ranking:
        return rank(visitor, [item for _key, item, _attrs in meta or self.item_meta()])

    def render_for(self, visitor: Any | None, context: dict | None = None) -> SafeString:
        items = list(self.get("items") or ())
        meta = self.item_meta()
        if visitor is None:
            ranking = Ranking(list(range(len(items))), None, "no-visitor")
        elif getattr(visitor, "held_out", False):  # the global holdout: the editor's order, as everywhere
            ranking = Ranking(list(range(len(items))), None, "holdout")
            # Recorded (as a PersonalizedBlock's holdout default is), so the response is private:
            # a shared cache must not serve this order to the visitors the model ranks.
            visitor.record_adjustment(self.block_id, EDITOR, "holdout")
        else:
            ranking = self.ranking(visitor, meta)
        ranked = ranking.reason == MODEL
        if ranked and visitor is not None:
            visitor.record_adjustment(self.block_id, f"{RANKED}:{','.join(map(str, ranking.order))}",
                                      MODEL)
        highlight = ranked and bool((self.get("options") or {}).get("highlight_top", True))
        content_block = self.block.child_blocks["items"].child_block.child_blocks["content"]
        base = dict(context or {})
        base["highlighted"] = False
        variant = RANKED if ranked else EDITOR
        rendered = []
        for position, index in enumerate(ranking.order):
            item = items[index]
            top = highlight and position == 0
            html = content_block.render(item["content"],
                                        context={**base, "highlighted": True} if top else base)
            before, after = meta[index][2]
            rendered.append(SafeString(
                f'<div class="ma-ranked-item{" ma-highlight" if top else ""}" {before}'
                f' data-ma-variant="{variant}"{after} data-ma-pos="{position}"'
                + (' data-ma-highlight="1"' if top else "") + f">{html}</div>"))
        template = getattr(self.block.meta, "template", None)
        if template:
            return SafeString(render_to_string(template, {
                **base, "self": self, "value": self, "ranked_items": rendered, "ranking": ranking,
                "ranked": ranked}))
        return SafeString(f'<div class="ma-ranked" data-ma-ranked="{escape(self.block_id)}">'
                          + "".join(rendered) + "</div>")


class RankedBlock(blocks.StructBlock):
    """Items of ``child_block`` content, ordered for each visitor by predicted engagement.

    ``RankedBlock(CardBlock())``; a subclass may set ``Meta.template``: it gets
    ``ranked_items`` (each item's HTML, wrapped for the tracker, best first), ``ranking`` and
    ``ranked`` (True when the model ordered them). The highlighted item's own template sees
    ``highlighted`` True, and its wrapper has the class ``ma-highlight``.
    """

    def __init__(self, child_block: blocks.Block | None = None, **kwargs: Any) -> None:
        child_block = child_block or blocks.RichTextBlock()
        super().__init__([
            ("block_id", blocks.CharBlock(required=False, form_classname="ma-block-id", label=_("Block id"),
                                          help_text=_("Filled in automatically; tracking and "
                                                      "reports use it."))),
            ("items", blocks.ListBlock(RankedItemBlock(child_block), label=_("Items"),
                                       help_text=_("In your order: visitors the model knows see "
                                                   "them in theirs."))),
            ("options", RankedOptionsBlock()),
        ], **kwargs)

    def get_default(self) -> Any:
        value = super().get_default()
        value["block_id"] = uuid.uuid4().hex[:12]
        return value

    def to_python(self, value: Any) -> RankedValue:
        if isinstance(value, dict) and not value.get("block_id"):
            digest = hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode())
            value = {**value, "block_id": digest.hexdigest()[:12]}
        return super().to_python(value)

    def clean(self, value: Any) -> Any:
        value = super().clean(value)
        if not value.get("block_id"):
            value["block_id"] = uuid.uuid4().hex[:12]
        return value

    def render(self, value: RankedValue, context: dict | None = None) -> SafeString:
        request = (context or {}).get("request")
        if request is None:  # no request (search indexing...): the editor's order
            return value.render_for(None, context)
        visitor = request.__dict__.get("visitor") or get_visitor(request)
        return value.render_for(visitor, context)

    class Meta:
        value_class = RankedValue
        icon = "list-ol"
        label = _("Ranked list")
        form_classname = "ma-ranked"


__all__ = ["RankedBlock", "RankedItemBlock", "RankedValue", "validate_tags"]
