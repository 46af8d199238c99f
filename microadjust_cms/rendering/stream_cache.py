"""Per-process cache of the personalized blocks in StreamField text read from the database.

A page with personalized blocks stores, for each, every variant and the default: decoding that
JSON on every page view was a quarter of what such a page costs more than the same page with
plain blocks. The text of a StreamField changes whenever its content does (publishing writes the
revision's content to the page row, as does ``page.save()``), so this keeps, per text, the
decoded personalized blocks, and each request's stream is built from them:

- The key is the text itself (with the field): exact, so there is nothing to invalidate and no
  revision id to trust. A published change is new text: it shows on the next request.
- Only values read from the database come through here (the field's ``from_db_value``). Previews,
  drafts and revisions are built from form data or revision JSON and are never cached.
- Top-level PersonalizedBlock values are shared between requests and read only (``FrozenDict``,
  ``FrozenList``: any change raises; copies, deep copies and pickles are plain). Each request
  gets its own ``PersonalizedValue`` (``PersonalizedBlock.to_python``), built from what was
  derived from the stored value once: its compiled program, its wrapper attributes and, when the
  content block's conversion reads nothing but the stored data (``rendering.blocks._shares_conversions``:
  Wagtail's plain field blocks, rich text, and structs, lists and streams of them; not
  choosers, which read the database), the converted content of each variant and the default,
  which rendering only reads. Dict access on a ``PersonalizedValue`` converts from a plain copy
  (``thaw``), as does ``raw_data`` (``PrivateRawData``). Every other block is decoded per request
  from its own JSON text, as before, and each request gets its own stream list and item dicts
  (Wagtail's ``StreamValue`` changes those in place).
- Bounded: ``MAX_TEXTS`` texts, ``MAX_TOTAL_CHARS`` characters in all, least recently used out
  first; a text longer than ``MAX_TEXT_CHARS`` is never kept. A text with no personalized block
  at the top level is decoded as usual and not kept.

``install(PersonalizedBlock)`` (from ``AppConfig.ready``) puts the cache on every model's StreamField that has a
PersonalizedBlock among its block types.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import OrderedDict
from typing import Any

from django.db.models.expressions import Col
from wagtail.blocks import StreamValue
from wagtail.fields import StreamField

#: Texts kept per process, their total length (characters), the longest text kept. The decoded
#: data kept with a text takes a few times its length in memory.
MAX_TEXTS = 256
MAX_TOTAL_CHARS = 4_000_000
MAX_TEXT_CHARS = 400_000


def _read_only(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise TypeError("Stored block data read from the database is shared between requests and "
                    "read only; change a copy (copy.deepcopy) or the block's value instead.")


class FrozenDict(dict):
    """A dict that refuses changes (shared stored data). Copies and pickles are plain dicts."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __copy__(self) -> dict:
        return dict(self)

    def __deepcopy__(self, memo: dict) -> dict:
        return {key: copy.deepcopy(value, memo) for key, value in self.items()}

    def __reduce__(self) -> tuple:
        return dict, (dict(self),)


class FrozenList(list):
    """A list that refuses changes (shared stored data). Copies and pickles are plain lists."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only
    append = extend = insert = pop = remove = clear = sort = reverse = _read_only

    def __copy__(self) -> list:
        return list(self)

    def __deepcopy__(self, memo: dict) -> list:
        return [copy.deepcopy(value, memo) for value in self]

    def __reduce__(self) -> tuple:
        return list, (list(self),)


class SharedStored(FrozenDict):
    """A top-level PersonalizedBlock's stored value, shared between requests. ``prepared``: what
    ``PersonalizedBlock.to_python`` derived from it once (its own business)."""

    __slots__ = ("prepared",)


def freeze(value: Any) -> Any:
    """A read-only deep copy of decoded JSON."""
    if type(value) is dict:
        return FrozenDict({key: freeze(item) for key, item in value.items()})
    if type(value) is list:
        return FrozenList([freeze(item) for item in value])
    return value


def thaw(value: Any) -> Any:
    """A plain deep copy of frozen data; anything else as it is."""
    if isinstance(value, FrozenDict):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, FrozenList):
        return [thaw(item) for item in value]
    return value


class _Entry:
    """One cached text: ``layout`` has a read-only item per shared block and None where the
    next item of ``rest`` (the other blocks, as JSON text) goes."""

    __slots__ = ("layout", "rest", "text")

    def __init__(self, layout: list, rest: str | None, text: str) -> None:
        self.layout, self.rest, self.text = layout, rest, text

    def stream_data(self) -> list:
        """This request's raw stream: its own list and item dicts, the shared values in them."""
        if self.rest is None:
            return [dict(item) for item in self.layout]
        rest = iter(json.loads(self.rest))
        return [next(rest) if item is None else dict(item) for item in self.layout]


def _entry(names: frozenset[str], data: Any, text: str) -> _Entry | None:
    """The entry for decoded stream data, or None when it has no top-level block to share."""
    if not isinstance(data, list):
        return None
    layout: list = []
    rest: list = []
    for item in data:
        if type(item) is dict and item.get("type") in names and type(item.get("value")) is dict:
            value = SharedStored({key: freeze(field) for key, field in item["value"].items()})
            value.prepared = None
            layout.append(FrozenDict({**item, "value": value}))
        else:
            layout.append(None)
            rest.append(item)
    if len(rest) == len(layout):
        return None
    return _Entry(layout, json.dumps(rest) if rest else None, text)


#: Entries, least recently used first, by a quick key: (field, length, head, tail) of the text.
#: Hashing that is cheap (hashing a page's whole text costs more than all the rest of a look-up);
#: the entry keeps the text, and a look-up is a hit only when it compares equal. A text whose
#: quick key another text holds (same length, head and tail) is kept by (field, whole text).
_entries: OrderedDict[tuple, _Entry] = OrderedDict()
#: Quick keys of texts found to hold nothing to share (pages of plain blocks): decoded as usual
#: without looking for blocks to share. Only a hint, never an answer: a text wrongly taken for
#: one of these is decoded per request, as without the cache.
_plain: OrderedDict[tuple, None] = OrderedDict()
_total_chars = 0
_lock = threading.Lock()
_EDGE = 64


def _store(key: tuple, entry: _Entry) -> None:
    global _total_chars
    with _lock:
        old = _entries.pop(key, None)
        if old is not None:
            _total_chars -= len(old.text)
        _entries[key] = entry
        _total_chars += len(entry.text)
        while len(_entries) > MAX_TEXTS or _total_chars > MAX_TOTAL_CHARS:
            _total_chars -= len(_entries.popitem(last=False)[1].text)


def _find(key: tuple, owner: Any, text: str) -> _Entry | None:
    with _lock:
        entry = _entries.get(key)
        if entry is not None and entry.text != text:
            key = (owner, text)
            entry = _entries.get(key)
        if entry is not None:
            _entries.move_to_end(key)
    return entry


def stream_data(owner: Any, names: frozenset[str], text: str) -> Any:
    """The decoded ``text`` for this request (``json.loads`` of it, but shared personalized
    blocks come from the cache). ``owner`` separates fields (their blocks differ); ``names``:
    the field's PersonalizedBlock types. Raises ValueError for text that is not JSON."""
    key = (owner, len(text), text[:_EDGE], text[-_EDGE:])
    entry = _find(key, owner, text)
    if entry is not None:
        return entry.stream_data()
    data = json.loads(text)
    if len(text) <= MAX_TEXT_CHARS and key not in _plain:
        entry = _entry(names, data, text)  # copies: ``data`` stays this request's own
        if entry is not None:
            held = _entries.get(key)
            _store(key if held is None or held.text == text else (owner, text), entry)
        else:
            with _lock:
                _plain[key] = None
                if len(_plain) > MAX_TEXTS:
                    _plain.popitem(last=False)
    return data


class PrivateRawData(StreamValue.RawDataView):
    """``raw_data`` of a stream built from the cache. Wagtail lets code edit a stream's raw data in
    place (``page.body.raw_data[0]["value"]["variants"] = ...``, as data migrations and scripts
    do): the first read through it gives every shared block of the stream a plain copy of its
    own, so such edits stay in this stream."""

    thawed = False

    def __getitem__(self, i: Any) -> Any:
        if not self.thawed:
            for item in self.stream_value._raw_data:
                if item is not None and type(item.get("value")) is SharedStored:
                    item["value"] = thaw(item["value"])  # the item dict is this stream's own
            self.thawed = True
        return super().__getitem__(i)


class CachedFromDb:
    """A StreamField's ``from_db_value`` through the cache (set on the field by ``install``)."""

    def __init__(self, field: StreamField, names: frozenset[str]) -> None:
        self.field, self.names = field, names

    def __call__(self, value: Any, expression: Any, connection: Any) -> Any:
        # Only the column itself (not a key of it) as text: anything else goes the usual way.
        if type(value) is str and isinstance(expression, Col):
            try:
                data = stream_data(self, self.names, value)
            except ValueError:
                pass  # not JSON (a field migrated from text): StreamField keeps it as raw text
            else:
                value = self.field.to_python(data)
                if isinstance(value, StreamValue):
                    value.__dict__["raw_data"] = PrivateRawData(value)  # in place of the cached_property
                return value
        return StreamField.from_db_value(self.field, value, expression, connection)


def personalized_types(field: StreamField, block_class: type) -> frozenset[str]:
    return frozenset(name for name, block in field.stream_block.child_blocks.items()
                     if isinstance(block, block_class))


def install(block_class: type) -> None:
    """Cache the StreamFields that hold ``block_class`` blocks (``PersonalizedBlock``, from
    ``apps.ready``: this module is below the blocks it caches) at the top level."""
    from django.apps import apps

    for model in apps.get_models():
        for field in model._meta.local_concrete_fields:
            if isinstance(field, StreamField) and not isinstance(
                    field.__dict__.get("from_db_value"), CachedFromDb):
                names = personalized_types(field, block_class)
                if names:
                    field.from_db_value = CachedFromDb(field, names)


def clear() -> None:
    """Forget every cached text (tests)."""
    global _total_chars
    with _lock:
        _entries.clear()
        _plain.clear()
        _total_chars = 0
