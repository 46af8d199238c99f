"""The collect endpoint's event schema (version 1), validated as a whole batch.

A batch is ``{"v": 1, "events": [...]}``; each event names its ``type`` and carries ``t``, the
browser's time in epoch milliseconds. ``docs/openapi.yaml`` documents the same schema.
Validation is a pure function: it returns rows for ``Event`` or raises ``BatchError`` listing
every problem, so a batch is stored whole or not at all.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ..behaviour import parse_opt

SCHEMA_VERSION = 1
DAY_MS = 24 * 3600 * 1000
MAX_DWELL_MS = DAY_MS
SCROLL_MILESTONES = (25, 50, 75, 90, 100)
MAX_ERRORS = 20
# ``\Z``, not ``$``: ``$`` also matches before a final newline ("b1\n" is not a block id).
BLOCK_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
#: Control characters, and lone surrogates (JSON's "\ud800" escape), which no database stores.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
#: A content type or tag a block declares (``data-ma-kind``, ``data-ma-tags``).
CONTENT_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}\Z")
MAX_TAGS = 5
#: A block's position on the page or in its RankedBlock (``data-ma-pos``), 0 first.
MAX_POSITION = 9999
#: The visitor's segments when the page was rendered ("seg": slugs, space-separated), as
#: ``{% microadjust_tracker %}`` stamps them (``SEGMENT_RE``: a slug, as ``SlugField`` allows).
SEGMENT_RE = re.compile(r"^[-a-zA-Z0-9_]{1,100}\Z")
MAX_SEGMENTS = 8
MAX_SEGMENTS_LENGTH = 200

_PAGE = ("page", "path", "seg")
#: Block events may say what the block holds (its content type, "kind", and tags), where it
#: stood ("pos": the engagement model learns how position changes engagement) and, for an
#: auto-optimized block, the context and goal its variant was chosen for ("opt").
_CONTENT = ("kind", "tags", "pos", "opt")
#: type → (required fields, optional fields) besides "type" and "t".
EVENT_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "pageview": ((), (*_PAGE, "previous")),
    "impression": (("block", "variant"), (*_PAGE, *_CONTENT)),
    "dwell": (("block", "variant", "value"), (*_PAGE, *_CONTENT)),
    "scroll": (("value",), _PAGE),
    "click": (("block", "variant"), (*_PAGE, "name", *_CONTENT)),
    "abandon": (("block", "variant"), (*_PAGE, "value", *_CONTENT)),
    "conversion": (("name",), (*_PAGE, "block", "variant", *_CONTENT)),
}


class BatchError(ValueError):
    """The batch is rejected; ``errors`` names each problem ("events[3].t: ...")."""

    def __init__(self, errors: list[str]):
        self.errors = errors[:MAX_ERRORS]
        super().__init__("; ".join(self.errors))


def _text(value: Any, limit: int) -> str | None:
    """An error message, or None when ``value`` is a bounded text without control characters."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > limit:
        return f"must be at most {limit} characters"
    if CONTROL_RE.search(value):
        return "must not contain control characters"
    return None


def _integer(value: Any, low: int, high: int) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return "must be a whole number"
    if not low <= value <= high:
        return f"must be between {low} and {high}"
    return None


def _check_time(_kind: str, value: Any, now_ms: int) -> str | None:
    if type(value) is int and 0 <= value and abs(value - now_ms) <= DAY_MS:
        return None  # the usual event, answered without the calls that word a problem
    problem = _integer(value, 0, 2**53)
    if problem is None and abs(value - now_ms) > DAY_MS:
        problem = "is more than a day away from the server's time"
    return problem


def _check_path(_kind: str, value: Any, _now_ms: int) -> str | None:
    problem = _text(value, 200)
    if problem is None and not value.startswith("/"):
        problem = "must be a path starting with /"
    return problem


def _check_block(_kind: str, value: Any, _now_ms: int) -> str | None:
    if not isinstance(value, str) or not BLOCK_ID_RE.match(value):
        return "must be a block id (letters, digits, - and _, at most 64)"
    return None


def _check_kind(_kind: str, value: Any, _now_ms: int) -> str | None:
    if not isinstance(value, str) or not CONTENT_KEY_RE.match(value):
        return "must be a content type (a-z, 0-9, - and _, at most 32)"
    return None


def _check_tags(_kind: str, value: Any, _now_ms: int) -> str | None:
    tags = value.split(" ") if isinstance(value, str) else None
    if not tags or len(tags) > MAX_TAGS or not all(CONTENT_KEY_RE.match(t) for t in tags):
        return (f"must be 1 to {MAX_TAGS} space-separated tags "
                "(a-z, 0-9, - and _, at most 32 each)")
    return None


def _check_segments(_kind: str, value: Any, _now_ms: int) -> str | None:
    slugs = value.split(" ") if isinstance(value, str) and len(value) <= MAX_SEGMENTS_LENGTH else None
    if not slugs or len(slugs) > MAX_SEGMENTS or not all(SEGMENT_RE.match(s) for s in slugs):
        return (f"must be 1 to {MAX_SEGMENTS} space-separated segment slugs "
                f"(letters, digits, - and _; at most {MAX_SEGMENTS_LENGTH} characters in all)")
    return None


def _check_opt(_kind: str, value: Any, _now_ms: int) -> str | None:
    if not isinstance(value, str) or len(value) > 80 or parse_opt(value) is None:
        return ("must be \"<context> <goal>\": all, in, out, none or cluster-<n>, then click or "
                "a conversion name (letters, digits, _ . : -, at most 60)")
    return None


def _check_value(kind: str, value: Any, _now_ms: int) -> str | None:
    if type(value) is int and kind != "scroll" and 0 <= value <= MAX_DWELL_MS:
        return None
    if kind == "scroll":
        # ``50.0 in SCROLL_MILESTONES`` is true, but the column is an integer (PostgreSQL
        # refused "50.0": a 503), so an integer it must be, as every other number here.
        if type(value) is not int or value not in SCROLL_MILESTONES:
            return f"must be one of {', '.join(map(str, SCROLL_MILESTONES))}"
        return None
    return _integer(value, 0, MAX_DWELL_MS)


#: Each field's check: (event type, value, server time in ms) → a problem, or None.
_CHECKS = {
    "t": _check_time,
    "page": lambda _k, value, _n: (None if type(value) is int and 0 < value < 2**31
                                   else _integer(value, 1, 2**31 - 1)),
    "path": _check_path,
    "previous": _check_path,
    "block": _check_block,
    "variant": lambda _k, value, _n: _text(value, 50),
    "name": lambda _k, value, _n: _text(value, 100),
    "kind": _check_kind,
    "tags": _check_tags,
    "seg": _check_segments,
    "opt": _check_opt,
    "pos": lambda _k, value, _n: _integer(value, 0, MAX_POSITION),
    "value": _check_value,
}


#: Text fields whose check depends on the value alone: a value found valid once is valid again.
_TEXT_FIELDS = frozenset({"path", "previous", "block", "variant", "name", "kind", "tags", "seg",
                          "opt"})
#: Per text field, values found valid (paths, block ids, variant names repeat across events and
#: batches: a set look-up instead of a check a field). Bounded: emptied past ``_KNOWN_LIMIT``.
_known: dict[str, set[str]] = {name: set() for name in _TEXT_FIELDS}
_KNOWN_LIMIT = 4096


#: Per event type: (required fields with "t", (field, its check, its known values or None) in
#: checking order, allowed keys).
_SPECS = {kind: (("t", *required),
                 tuple((name, _CHECKS[name], _known.get(name)) for name in ("t", *required, *optional)),
                 frozenset({"type", "t", *required, *optional}))
          for kind, (required, optional) in EVENT_FIELDS.items()}


def validate_batch(data: Any, *, now: datetime, max_events: int) -> list[dict[str, Any]]:
    """Rows for ``Event(**row)`` (without the visitor id), or ``BatchError``."""
    if not isinstance(data, dict):
        raise BatchError(["body: must be a JSON object {\"v\": 1, \"events\": [...]}"])
    errors: list[str] = []
    unknown = sorted(set(data) - {"v", "events"})
    if unknown:
        errors.append(f"body: unknown fields {', '.join(unknown)}")
    if data.get("v") != SCHEMA_VERSION or isinstance(data.get("v"), bool):
        errors.append(f"v: must be {SCHEMA_VERSION} (the schema version)")
    events = data.get("events")
    if not isinstance(events, list) or not events:
        errors.append("events: must be a non-empty list")
        raise BatchError(errors)
    if len(events) > max_events:
        errors.append(f"events: at most {max_events} events a batch, got {len(events)}")
        raise BatchError(errors)
    now_ms = int(now.timestamp() * 1000)
    rows = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            errors.append(f"events[{index}]: must be an object")
            continue
        kind = event.get("type")
        spec = _SPECS.get(kind) if isinstance(kind, str) else None
        if spec is None:
            errors.append(f"events[{index}].type: must be one of {', '.join(EVENT_FIELDS)}")
            continue
        required, fields, allowed = spec
        if not allowed.issuperset(event):
            for name in sorted(set(event) - allowed):
                errors.append(f"events[{index}].{name[:40]}: is not a field of a {kind} event")
        for name in required:
            if name not in event:
                errors.append(f"events[{index}].{name}: is required for a {kind} event")
        for name, check, known in fields:
            if name in event:
                value = event[name]
                if known is not None and type(value) is str and value in known:
                    continue
                problem = check(kind, value, now_ms)
                if problem:
                    errors.append(f"events[{index}].{name}: {problem}")
                elif known is not None:
                    if len(known) >= _KNOWN_LIMIT:
                        known.clear()
                    known.add(value)
        if len(errors) >= MAX_ERRORS:
            break
        if errors:
            continue  # the batch is refused: a row is built only from an event found valid
        rows.append({
            "type": kind,
            # Valid: an integer within a day of ``now``, so always a representable date.
            "occurred_at": datetime.fromtimestamp(event["t"] / 1000, tz=UTC),
            "page_id": event.get("page"),
            "path": event.get("path", ""),
            "previous_path": event.get("previous", ""),
            "block_id": event.get("block", ""),
            "variant": event.get("variant", ""),
            "value": event.get("value"),
            "name": event.get("name", ""),
            "content_type": event.get("kind", ""),
            "tags": event.get("tags", ""),
            "position": event.get("pos"),
            "segments": event.get("seg", ""),
            # Not a column: counted into the block's auto-optimize counters (``summarize``).
            "opt": event.get("opt", ""),
        })
    if errors:
        raise BatchError(errors)
    return rows
