"""Monthly partitions of the event table on PostgreSQL (declarative, by ``occurred_at``).

Migration 0014 turns the table into a partitioned one with a DEFAULT partition and the months
around its creation. After that, ``ensure_partitions`` creates the coming months ahead (the
loader at start and every hour, the nightly purge job), and retention drops whole months
(``drop_partitions_before``) instead of deleting their rows one by one. A row whose month has no
partition yet lands in the DEFAULT partition, never refused; creating that month later moves
such rows into it. Elsewhere (SQLite) the table is a plain table and these do nothing.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from ..conf import get_setting
from .models import Event

logger = logging.getLogger("microadjust_cms.partitions")
TABLE = Event._meta.db_table
DEFAULT_PARTITION = f"{TABLE}_default"
_MONTH_RE = re.compile(rf"^{re.escape(TABLE)}_y(\d{{4}})m(\d{{2}})$")


def month_start(value: datetime | date) -> date:
    return date(value.year, value.month, 1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{TABLE}_y{month.year:04d}m{month.month:02d}"


def _bound(month: date) -> str:
    return datetime(month.year, month.month, 1, tzinfo=UTC).isoformat()


def is_partitioned(using: str = DEFAULT_DB_ALIAS) -> bool:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_partitioned_table "
                       "WHERE partrelid = to_regclass(%s))", [TABLE])
        return cursor.fetchone()[0]


def partition_rows(using: str = DEFAULT_DB_ALIAS) -> dict[str, int]:
    """Every partition (the DEFAULT one too) and its rows as the planner estimates them
    (``reltuples``: free to read, where a count is not; -1, shown as 0, before an ANALYZE)."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT c.relname, c.reltuples::bigint FROM pg_inherits i "
                       "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)",
                       [TABLE])
        return {name: max(0, rows) for name, rows in cursor.fetchall()}


def monthly_partitions(using: str = DEFAULT_DB_ALIAS) -> dict[date, str]:
    """The months that have a partition of their own, and its name."""
    months = {}
    for name in partition_rows(using):
        match = _MONTH_RE.match(name)
        if match:
            months[date(int(match.group(1)), int(match.group(2)), 1)] = name
    return months


def create_partition(month: date, using: str = DEFAULT_DB_ALIAS) -> str:
    """The month's partition; rows of that month already in the DEFAULT partition move into it
    (PostgreSQL refuses a new partition whose rows sit in the DEFAULT one)."""
    connection, name = connections[using], partition_name(month)
    quote = connection.ops.quote_name
    lower, upper = _bound(month), _bound(add_months(month, 1))
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {quote(DEFAULT_PARTITION)} "
                       "WHERE occurred_at >= %s AND occurred_at < %s)", [lower, upper])
        stranded = cursor.fetchone()[0]
        if stranded:
            cursor.execute(f"ALTER TABLE {quote(TABLE)} DETACH PARTITION {quote(DEFAULT_PARTITION)}")
        cursor.execute(f"CREATE TABLE {quote(name)} PARTITION OF {quote(TABLE)} "
                       "FOR VALUES FROM (%s) TO (%s)", [lower, upper])
        if stranded:
            cursor.execute(f"INSERT INTO {quote(TABLE)} SELECT * FROM {quote(DEFAULT_PARTITION)} "
                           "WHERE occurred_at >= %s AND occurred_at < %s", [lower, upper])
            cursor.execute(f"DELETE FROM {quote(DEFAULT_PARTITION)} "
                           "WHERE occurred_at >= %s AND occurred_at < %s", [lower, upper])
            cursor.execute(f"ALTER TABLE {quote(TABLE)} ATTACH PARTITION "
                           f"{quote(DEFAULT_PARTITION)} DEFAULT")
    logger.info("Created event partition %s%s", name, " (rows moved from the default)" if stranded else "")
    return name


def ensure_partitions(now: datetime | None = None, *, months_ahead: int | None = None,
                      using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Partitions from last month to ``EVENT_PARTITION_MONTHS_AHEAD`` months ahead; returns the
    names created. Nothing to do off PostgreSQL or on an unpartitioned table."""
    if not is_partitioned(using):
        return []
    ahead = get_setting("EVENT_PARTITION_MONTHS_AHEAD") if months_ahead is None else months_ahead
    current = month_start(timezone.localtime(now or timezone.now(), UTC))
    existing = monthly_partitions(using)
    created = []
    for offset in range(-1, ahead + 1):
        month = add_months(current, offset)
        if month not in existing:
            created.append(create_partition(month, using))
    return created


def drop_partitions_before(cutoff: datetime, using: str = DEFAULT_DB_ALIAS) -> tuple[list[str], int]:
    """Drop the months that end on or before ``cutoff``: retention a month at a time, without
    deleting rows one by one (what is left before the cutoff is deleted by the caller).
    Returns the partitions dropped and how many rows they held."""
    if not is_partitioned(using):
        return [], 0
    quote = connections[using].ops.quote_name
    dropped, rows = [], 0
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        for month, name in sorted(monthly_partitions(using).items()):
            following = add_months(month, 1)
            if datetime(following.year, following.month, 1, tzinfo=UTC) <= cutoff:
                cursor.execute(f"SELECT count(*) FROM {quote(name)}")
                rows += cursor.fetchone()[0]
                cursor.execute(f"DROP TABLE {quote(name)}")
                dropped.append(name)
    if dropped:
        logger.info("Dropped event partitions %s (%d rows)", ", ".join(dropped), rows)
    return dropped, rows
