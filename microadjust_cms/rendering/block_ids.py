"""Keep PersonalizedBlock ids unique within an object's StreamFields."""

from __future__ import annotations

import uuid
from typing import Any

from wagtail.blocks import StreamValue, StructValue
from wagtail.blocks.list_block import ListValue
from wagtail.fields import StreamField


def personalized_values(value: Any):
    """Every PersonalizedBlock value inside a stream, list or struct value, depth first."""
    from .blocks import PersonalizedValue

    if isinstance(value, PersonalizedValue):
        yield value
    elif isinstance(value, StreamValue):
        for child in value:
            yield from personalized_values(child.value)
    elif isinstance(value, ListValue):
        for item in value:
            yield from personalized_values(item)
    elif isinstance(value, StructValue):
        for item in value.values():
            yield from personalized_values(item)


def object_personalized_values(instance: Any):
    """Every PersonalizedBlock value in all StreamFields of a model instance (a page)."""
    for field in instance._meta.get_fields():
        if isinstance(field, StreamField):
            stream = getattr(instance, field.attname, None)
            if isinstance(stream, StreamValue):
                yield from personalized_values(stream)


def renew_duplicate_block_ids(instance: Any) -> list[str]:
    """Give every repeated block id after its first use a fresh one; return the new ids."""
    seen: set[str] = set()
    renewed: list[str] = []
    for value in object_personalized_values(instance):
        block_id = value.block_id
        if not block_id or block_id in seen:
            block_id = uuid.uuid4().hex[:12]
            value["block_id"] = block_id
            renewed.append(block_id)
        seen.add(block_id)
    return renewed


def as_saved(field: StreamField, raw: list) -> StreamValue:
    """A StreamField value built from raw block data, converted so that saving it stores every
    block as its ``get_prep_value`` prepares it (as the page editor does): personalized blocks
    then carry their ``rules_rev``. For fixtures, imports and benchmarks."""
    value = field.stream_block.to_python(raw)
    for _child in value:  # binding every child makes get_prep_value use the blocks
        pass
    return value
