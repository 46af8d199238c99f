"""The fragment API's per-process cache of a page's personalized blocks, by live revision.

Finding a block used to cost the fragment API two of its four queries and most of its time:
the specific page (a second query, then its StreamFields decoded) and a walk over every
block. A published page's content is fixed by its live revision, so this keeps, per
``(page id, live revision id)``, each personalized block's definition and its stored data as
JSON text. A request rebuilds its own value from that text (``json.loads`` and the block's lazy
``to_python``), so nothing mutable is shared between requests or threads: Wagtail's stream
values and ``PersonalizedValue`` convert and cache children in place.

Publishing a new revision changes the key, so the next request reads the new content.
Content changed without a revision (``page.save()`` in code, without
``save_revision().publish()``) is not seen until the process restarts; pages without a live
revision are never cached. Liveness, the page row itself and view restrictions are still read
per request by the caller; ``view_restrictions`` makes the last one query for the usual page
without any.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from django.db import connections
from wagtail.models import Page, PageViewRestriction

from .block_ids import object_personalized_values

#: Pages kept per process (each entry is the personalized blocks' stored JSON of one page).
MAX_PAGES = 256


@lru_cache(maxsize=MAX_PAGES)
def _stored_blocks(page_id: int, live_revision_id: int) -> dict[str, tuple[Any, str]] | None:
    """Block id → (PersonalizedBlock definition, stored value as JSON text) for this revision,
    or None when the page moved on to another revision while it was read (not cached then:
    the caller reads the page itself)."""
    page = Page.objects.filter(pk=page_id).first()
    if page is None:
        return None
    page = page.specific
    if page.live_revision_id != live_revision_id:
        return None
    blocks: dict[str, tuple[Any, str]] = {}
    for value in object_personalized_values(page):
        if value.block_id and value.block_id not in blocks:
            blocks[value.block_id] = (value.block, json.dumps(value._stored))
    return blocks


def cached_personalized_value(page: Page, block_id: str) -> tuple[bool, Any]:
    """``(True, value or None)`` from the cache for a live page with a live revision, a fresh
    ``PersonalizedValue`` for this request; ``(False, None)`` when the caller must look itself."""
    revision = page.live_revision_id
    if revision is None:
        return False, None
    blocks = _stored_blocks(page.pk, revision)
    if blocks is None:
        return False, None
    found = blocks.get(block_id)
    if found is None:
        return True, None
    block, stored = found
    return True, block.to_python(json.loads(stored))


def _restriction_probe_sql(alias: str, depth: int) -> str:
    connection = connections[alias]
    quote = connection.ops.quote_name
    page, restriction = Page._meta, PageViewRestriction._meta
    p_id, p_path, p_alias = (quote(page.get_field(name).column) for name in ("id", "path", "alias_of"))
    r_page = quote(restriction.get_field("page").column)
    return (f"SELECT 1 FROM {quote(restriction.db_table)} r JOIN {quote(page.db_table)} p "
            f"ON r.{r_page} = p.{p_id} OR r.{r_page} = p.{p_alias} "
            f"WHERE p.{p_path} IN ({', '.join(['%s'] * depth)}) LIMIT 1")


def view_restrictions(page: Page) -> list[PageViewRestriction]:
    """``page.get_view_restrictions()``, after one plain query that answers "none" for a page
    nobody restricted (Wagtail's method costs two ORM queries, a third of the API's time).

    The probe looks for a restriction on the page or any ancestor, or on the page any of them
    is an alias of: a superset of what Wagtail checks (the alias source for an alias, the page
    itself otherwise). Only when it finds one does Wagtail's own method decide."""
    steplen = page.steplen
    paths = [page.path[:end] for end in range(steplen, len(page.path) + 1, steplen)]
    alias = page._state.db or "default"
    with connections[alias].cursor() as cursor:
        cursor.execute(_restriction_probe_sql(alias, len(paths)), paths)
        if cursor.fetchone() is None:
            return []
    return list(page.get_view_restrictions())


def clear() -> None:
    """Forget every cached page (tests)."""
    _stored_blocks.cache_clear()
