"""PostgreSQL: the event table becomes partitioned by month (``occurred_at``), with a DEFAULT
partition and the months around today (``tracking/partitions.py`` creates the next ones).
Existing rows are copied into the new table. Other databases: nothing changes."""

from datetime import UTC, date, datetime

from django.db import migrations

TABLE = "microadjust_cms_event"
OLD = f"{TABLE}_unpartitioned"
INDEXES = {
    "ma_event_visitor": "(visitor_id, occurred_at)",
    "ma_event_block": "(block_id, type, occurred_at)",
    "ma_event_page": "(page_id, type, occurred_at)",
    "ma_event_time": "(occurred_at)",
}


def _months_around(today: date) -> list[date]:
    index = today.year * 12 + today.month - 1
    return [date((index + k) // 12, (index + k) % 12 + 1, 1) for k in range(-1, 4)]


def _move(cursor, source: str) -> None:
    cursor.execute(f'INSERT INTO "{TABLE}" SELECT * FROM "{source}"')
    cursor.execute(f"SELECT setval(pg_get_serial_sequence('\"{TABLE}\"', 'id'), "
                   f'COALESCE((SELECT max(id) FROM "{TABLE}"), 0) + 1, false)')
    cursor.execute(f'DROP TABLE "{source}"')
    cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) "
                   "AND contype = 'p'", [TABLE])
    [(primary_key,)] = cursor.fetchall()
    if primary_key != f"{TABLE}_pkey":  # named while the old table held the name
        cursor.execute(f'ALTER TABLE "{TABLE}" RENAME CONSTRAINT "{primary_key}" TO "{TABLE}_pkey"')
    for name, columns in INDEXES.items():
        cursor.execute(f'CREATE INDEX "{name}" ON "{TABLE}" {columns}')


def _rebuild(schema_editor, *, partitioned: bool) -> None:
    """The event table built anew (partitioned by month, or plain again) with its rows."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{TABLE}" RENAME TO "{OLD}"')
        cursor.execute(f'CREATE TABLE "{TABLE}" (LIKE "{OLD}" INCLUDING DEFAULTS INCLUDING '
                       "IDENTITY INCLUDING CONSTRAINTS)"
                       + (" PARTITION BY RANGE (occurred_at)" if partitioned else ""))
        # A partitioned table's primary key holds the partition key.
        cursor.execute(f'ALTER TABLE "{TABLE}" ADD PRIMARY KEY '
                       + ("(id, occurred_at)" if partitioned else "(id)"))
        if partitioned:
            cursor.execute(f'CREATE TABLE "{TABLE}_default" PARTITION OF "{TABLE}" DEFAULT')
            months = _months_around(datetime.now(UTC).date())
            for month, following in zip(months, months[1:], strict=False):
                cursor.execute(
                    f'CREATE TABLE "{TABLE}_y{month.year:04d}m{month.month:02d}" PARTITION OF '
                    f'"{TABLE}" FOR VALUES FROM (%s) TO (%s)',
                    [datetime(month.year, month.month, 1, tzinfo=UTC),
                     datetime(following.year, following.month, 1, tzinfo=UTC)])
        for name in INDEXES:
            cursor.execute(f'ALTER INDEX "{name}" RENAME TO "{name}_old"')
        _move(cursor, OLD)


def partition(apps, schema_editor):
    _rebuild(schema_editor, partitioned=True)


def unpartition(apps, schema_editor):
    _rebuild(schema_editor, partitioned=False)


class Migration(migrations.Migration):

    dependencies = [
        ("microadjust_cms", "0013_loaded_batch"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
