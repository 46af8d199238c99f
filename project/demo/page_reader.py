"""Reading a rendered page the way ``tracker.js`` sees it: the tracked blocks and the tracker's
settings. Synthetic visitors (``simulate_traffic``) send events only for what a page really
shows, so they read the HTML with the standard library's parser rather than trusting the models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

#: HTML elements that never get a closing tag: they must not open a nesting level.
VOID_ELEMENTS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
                           "meta", "source", "track", "wbr"})


@dataclass
class TrackedBlock:
    """One ``data-ma-block`` element, in document order."""

    block_id: str
    variant: str
    kind: str = ""
    tags: str = ""
    #: Labels of the links and buttons inside (what the tracker names a click after).
    links: list[str] = field(default_factory=list)
    #: ``data-ma-goal`` names inside the block.
    goals: list[str] = field(default_factory=list)
    #: What the tracker sends as ``pos``: ``data-ma-pos`` (a RankedBlock's item), else the
    #: block's index among the page's tracked blocks.
    position: int = 0
    #: ``data-ma-opt`` of an auto-optimized block (the tracker copies it onto its events).
    opt: str = ""


@dataclass
class TrackedPage:
    blocks: list[TrackedBlock]
    #: ``#microadjust-config`` (endpoint, page, path, dnt, consent, impressionMs, ...), or None
    #: when the page has no tracker (nothing would be sent from it).
    config: dict[str, Any] | None
    #: ``data-ma-goal`` names outside any block (site-wide goals).
    goals: list[str] = field(default_factory=list)


def _position(attribute: str | None, index: int) -> int:
    """As tracker.js: a valid ``data-ma-pos`` (0 to 9999), else the index."""
    try:
        position = int(attribute or "")
    except ValueError:
        return min(index, 9999)
    return position if 0 <= position < 10000 else min(index, 9999)


class _TrackedPageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[TrackedBlock] = []
        self.goals: list[str] = []
        self.config_text: list[str] | None = None
        self.config: str | None = None
        #: Open elements as (tag, block it opened or None); the innermost open block is current.
        self._stack: list[tuple[str, TrackedBlock | None]] = []
        self._link: list[str] | None = None
        self._link_label = ""

    def _block(self) -> TrackedBlock | None:
        for _tag, block in reversed(self._stack):
            if block is not None:
                return block
        return None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script" and values.get("id") == "microadjust-config":
            self.config_text = []
        goal = values.get("data-ma-goal")
        if goal:
            (self._block().goals if self._block() else self.goals).append(goal)
        if tag in ("a", "button") and self._block() is not None:
            self._link = []
            self._link_label = values.get("aria-label", "")
        if tag in VOID_ELEMENTS:
            return
        block = None
        if "data-ma-block" in values:
            block = TrackedBlock(values["data-ma-block"], values.get("data-ma-variant", ""),
                                 values.get("data-ma-kind", ""), values.get("data-ma-tags", ""),
                                 position=_position(values.get("data-ma-pos"), len(self.blocks)),
                                 opt=values.get("data-ma-opt", ""))
            self.blocks.append(block)
        self._stack.append((tag, block))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self.config_text is not None:
            self.config = "".join(self.config_text)
            self.config_text = None
        if tag in ("a", "button") and self._link is not None:
            # What the tracker sends: aria-label, else the text, trimmed (whitespace folded here).
            label = " ".join((self._link_label or "".join(self._link)).split())[:100]
            block = self._block()
            if block is not None:
                block.links.append(label)
            self._link = None
        # Pop to the matching open tag (tolerates unclosed elements such as <p>).
        for index in range(len(self._stack) - 1, -1, -1):
            if self._stack[index][0] == tag:
                del self._stack[index:]
                break

    def handle_data(self, data: str) -> None:
        if self.config_text is not None:
            self.config_text.append(data)
        if self._link is not None:
            self._link.append(data)


def read_page(html: str) -> TrackedPage:
    """The tracked blocks, goals and tracker settings of a rendered page."""
    parser = _TrackedPageParser()
    parser.feed(html)
    parser.close()
    config = None
    if parser.config:
        try:
            loaded = json.loads(parser.config)
        except ValueError:
            loaded = None
        config = loaded if isinstance(loaded, dict) else None
    return TrackedPage(parser.blocks, config, parser.goals)
