"""Storing a validated batch of events: one multi-row ``INSERT`` in one transaction.

Why not ``Event.objects.bulk_create``: the collect endpoint is the busiest write path of a site
and a batch is already validated (``tracking.schema``), so the ORM's per-object work (building
ten model instances, ``pre_save`` and ``get_db_prep_save`` per field, and on PostgreSQL dumping
every column as an array for ``UNNEST``) was about half the endpoint's CPU time. On PostgreSQL
the batch goes as one JSON parameter to one ``INSERT ... SELECT FROM json_to_recordset``: the
driver quotes three values instead of eleven a row, and the statement is the same text for
every batch (psycopg caches its parse). Elsewhere (SQLite) it is one multi-row ``INSERT ...
VALUES`` (two when the backend's parameter limit needs it). On PostgreSQL in autocommit mode
the batch is one round trip (see ``_store_postgresql``) instead of four (BEGIN, SET, INSERT,
COMMIT). About 0.15 ms of CPU and 0.45 ms of wall time a batch of ten on loopback, against
about 1 ms and 2 ms through ``bulk_create``. No model signals are sent, as with
``bulk_create``; ``received_at`` is one server time for the whole batch.

On PostgreSQL the transaction commits with ``synchronous_commit`` off (``SET LOCAL``: this
transaction only, nothing else on the connection) unless ``MICROADJUST_COLLECT_SYNCHRONOUS_COMMIT``
is True. The commit then returns before its WAL is flushed to disk, so the endpoint does not
wait for an fsync. The trade-off: if the database server crashes (not just restarts cleanly),
batches acknowledged in the last moments before the crash (at most about three times
``wal_writer_delay``, 600 ms by default) can be lost. The database stays consistent: a batch is
there whole or not at all. Events are analytics, so this is the default; set the setting to True
where every acknowledged batch must survive a crash. Inside an outer transaction (e.g.
``ATOMIC_REQUESTS``) ``SET LOCAL`` applies to that whole transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from ..conf import get_setting
from .models import Event

#: The keys of a ``schema.validate_batch`` row, in column order (visitor, received_at
#: and device added here: they are the same for the whole batch).
ROW_FIELDS = ("type", "occurred_at", "page_id", "path", "previous_path", "block_id", "variant",
              "value", "name", "content_type", "tags", "position", "segments")
FIELDS = ("visitor_id", "received_at", "device", *ROW_FIELDS)


@lru_cache(maxsize=64)
def _insert_sql(alias: str, count: int) -> str:
    """``INSERT INTO <events> (<columns>) VALUES (%s, ...), ...`` for ``count`` rows."""
    row = "(" + ", ".join(["%s"] * len(FIELDS)) + ")"
    return f"INSERT INTO {_table(alias)} VALUES " + ", ".join([row] * count)


def _table(alias: str) -> str:
    """The events table and its columns in ``FIELDS`` order, quoted for ``alias``."""
    quote = connections[alias].ops.quote_name
    columns = ", ".join(quote(Event._meta.get_field(name).column) for name in FIELDS)
    return f"{quote(Event._meta.db_table)} ({columns})"


#: PostgreSQL column types of ``ROW_FIELDS`` for ``json_to_recordset``.
_PG_TYPES = {"occurred_at": "timestamptz", "page_id": "integer", "value": "integer",
             "position": "integer"}


@lru_cache(maxsize=8)
def _postgresql_sql(alias: str) -> str:
    """One INSERT of a whole batch passed as one JSON parameter: psycopg then quotes one value,
    not eleven a row, and the statement text is the same for every batch size. ``WITH
    ORDINALITY`` keeps the batch's order in the ids."""
    definitions = ", ".join(f"{name} {_PG_TYPES.get(name, 'text')}" for name in ROW_FIELDS)
    selected = ", ".join(f"e.{name}" for name in ROW_FIELDS)
    return (f"INSERT INTO {_table(alias)} SELECT %s, %s, %s, {selected} FROM ROWS FROM "
            f"(json_to_recordset(%s::json) AS ({definitions})) WITH ORDINALITY AS e "
            "ORDER BY e.ordinality")


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def store_events(visitor_id: str, rows: Sequence[dict[str, Any]], *, device: str = "",
                 using: str = DEFAULT_DB_ALIAS, received_at: datetime | None = None) -> None:
    """Insert ``rows`` (from ``validate_batch``) for ``visitor_id``: all of them or none.

    ``device`` is the sending browser's device class (``device_from_user_agent``), kept so the
    learning jobs can tell mobile visits from desktop ones without storing the User-Agent.

    Raises ``DatabaseError`` when the database refuses or is unreachable.
    """
    if not rows:
        return
    connection = connections[using]
    received_at = received_at or timezone.now()
    if connection.vendor == "postgresql":
        _store_postgresql(connection, visitor_id, device, rows, received_at)
    else:
        _store_values(connection, visitor_id, device, rows, received_at)


#: Sent before the INSERT unless COLLECT_SYNCHRONOUS_COMMIT (see the module docstring).
ASYNCHRONOUS_COMMIT = "SET LOCAL synchronous_commit TO OFF"


def _store_postgresql(connection: Any, visitor_id: str, device: str,
                      rows: Sequence[dict[str, Any]], received_at: datetime) -> None:
    """One round trip when the connection is in autocommit mode (the usual case): the INSERT,
    after ``SET LOCAL`` in the same query string. PostgreSQL runs the statements of one simple
    query as one implicit transaction, so the batch is stored whole or not at all, and the
    ``SET LOCAL`` ends with it. Inside an outer transaction, or with server-side binding
    (which takes one statement at a time), the same statements run one by one in a
    transaction; that costs a BEGIN and a COMMIT round trip more."""
    sql = _postgresql_sql(connection.alias)
    params = [visitor_id, received_at, device,
              json.dumps([{name: row.get(name) for name in ROW_FIELDS} for row in rows],
                         default=_json_default)]
    asynchronous = not get_setting("COLLECT_SYNCHRONOUS_COMMIT")
    server_side_binding = connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")
    if connection.in_atomic_block or (asynchronous and server_side_binding is True):
        with transaction.atomic(using=connection.alias, savepoint=False), \
                connection.cursor() as cursor:
            if asynchronous:
                cursor.execute(ASYNCHRONOUS_COMMIT)
            cursor.execute(sql, params)
        return
    with connection.cursor() as cursor:
        cursor.execute(f"{ASYNCHRONOUS_COMMIT}; {sql}" if asynchronous else sql, params)


def _store_values(connection: Any, visitor_id: str, device: str,
                  rows: Sequence[dict[str, Any]], received_at: datetime) -> None:
    """Other databases: a multi-row ``INSERT ... VALUES`` in a transaction."""
    values = [(visitor_id, received_at, device, *(row.get(name) for name in ROW_FIELDS))
              for row in rows]
    with transaction.atomic(using=connection.alias, savepoint=False):
        insert_rows(connection, values)


def insert_rows(connection: Any, values: Sequence[tuple]) -> None:
    """Rows in ``FIELDS`` order (datetimes as ``datetime``) with multi-row INSERTs; the caller
    holds the transaction. SQLite limits the parameters of one statement: a full batch may
    take two."""
    adapt = connection.ops.adapt_datetimefield_value
    values = [(row[0], adapt(row[1]), row[2], row[3], adapt(row[4]), *row[5:]) for row in values]
    fields = [Event._meta.get_field(name) for name in FIELDS]
    size = max(1, connection.ops.bulk_batch_size(fields, values))
    with connection.cursor() as cursor:
        for start in range(0, len(values), size):
            chunk = values[start:start + size]
            cursor.execute(_insert_sql(connection.alias, len(chunk)),
                           [value for row in chunk for value in row])


#: COPY's text format: backslash, tab, newline and carriage return escaped (in that order); then
#: the unit and record separators ``copy_text`` joins with (which no stored text holds) become
#: tab and newline, and U+001D (NULL) becomes ``\\N``. ``str.replace`` scans in C at memory
#: speed; ``str.translate`` with such a table looks up every character (20 times slower here).
_COPY_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"),
                 ("\x1f", "\t"), ("\x1e", "\n"), ("\x1d", "\\N"))
_NULL = "\x1d"


def _time_text(ms: int, seconds: dict[int, str]) -> str:
    """Epoch milliseconds as PostgreSQL reads a UTC time; the seconds' text is kept per call
    (a batch's events and its received time share most of their seconds)."""
    second, millis = divmod(ms, 1000)
    prefix = seconds.get(second)
    if prefix is None:
        prefix = seconds[second] = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{prefix}.{millis:03d}+00"


def copy_text(values: Sequence[tuple]) -> bytes:
    """Rows in ``FIELDS`` order, times in epoch milliseconds, as the body of ``COPY ... FROM
    STDIN`` (text format): fields joined with U+001F, rows with U+001E and NULL written U+001D,
    then a few ``str.replace`` over the whole body escape it and turn those into tabs, newlines
    and ``\\N``: a fraction of psycopg's ``write_row`` a row. Raises ``ValueError`` when a value
    holds U+001E or U+001F itself (the schema refuses every control character, and the loader
    refuses a stream entry holding one, so only a row written around both can)."""
    seconds: dict[int, str] = {}
    null = _NULL
    lines = []
    for (visitor, received, device, kind, occurred, page, path, previous, block, variant, value,
         name, content_type, tags, position, segments) in values:
        lines.append(
            f"{visitor}\x1f{_time_text(received, seconds)}\x1f{device}\x1f{kind}\x1f"
            f"{_time_text(occurred, seconds)}\x1f{null if page is None else page}\x1f{path}\x1f"
            f"{previous}\x1f{block}\x1f{variant}\x1f{null if value is None else value}\x1f{name}"
            f"\x1f{content_type}\x1f{tags}\x1f{null if position is None else position}\x1f{segments}")
    body = "\x1e".join(lines)
    separators = len(FIELDS) - 1
    if body.count("\x1f") != separators * len(values) or body.count("\x1e") != len(values) - 1:
        raise ValueError("a value holds a control character (U+001E or U+001F)")
    body += "\x1e"
    for character, escaped in _COPY_ESCAPES:
        body = body.replace(character, escaped)
    return body.encode()


def copy_rows(connection: Any, values: Sequence[tuple]) -> None:
    """Rows in ``FIELDS`` order, times (received, occurred) in epoch milliseconds, into the
    event table the fastest way the database has: PostgreSQL ``COPY ... FROM STDIN`` (psycopg
    3), else ``insert_rows``. The caller holds the transaction (the loader commits the rows with
    the batch ids it records)."""
    if not values:
        return
    if connection.vendor != "postgresql":
        def when(ms: int) -> datetime:
            return datetime.fromtimestamp(ms / 1000, tz=UTC)

        insert_rows(connection, [(row[0], when(row[1]), row[2], row[3], when(row[4]), *row[5:])
                                 for row in values])
        return
    body = copy_text(values)
    # ``wrap_database_errors``: psycopg's errors as Django's (DataError, OperationalError...),
    # as for any query; COPY goes through the driver's cursor, past Django's wrapper.
    with connection.cursor() as cursor, connection.wrap_database_errors:
        raw = getattr(cursor, "cursor", cursor)
        with raw.copy(f"COPY {_table(connection.alias)} FROM STDIN") as copy:
            copy.write(body)


__all__ = ["FIELDS", "ROW_FIELDS", "copy_rows", "copy_text", "insert_rows", "store_events"]
