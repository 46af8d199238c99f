"""The event loader on real Redis and the suite's database: written once, acknowledged only
after the commit, never dropped silently."""

import io
import json
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import connection
from django_redis import get_redis_connection
from hypothesis import given, settings
from hypothesis import strategies as st

from microadjust_cms.tracking.event_store import copy_text
from microadjust_cms.tracking.loader import EventLoader, parse_entry
from microadjust_cms.tracking.models import Event, LoadedBatch
from microadjust_cms.tracking.schema import validate_batch
from microadjust_cms.tracking.sinks import Batch
from microadjust_cms.tracking.sinks.redis_stream import dead_letter_key, encode_rows, stream_key

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)
T = int(datetime(2026, 12, 1, 12, tzinfo=UTC).timestamp() * 1000)


def rows(count=4, block="hero"):
    events = [{"type": "dwell", "t": T + i, "block": block, "variant": "v1", "value": 10 + i,
               "pos": i, **({"seg": "cluster-2 deal-hunters"} if i % 2 else {})} for i in range(count)]
    return validate_batch({"v": 1, "events": events}, now=NOW, max_events=100)


def redis():
    return get_redis_connection("redis")


def test_drain_loads_acknowledges_and_deletes_every_batch(stream_sink):
    for i in range(30):
        stream_sink.write(Batch(f"{i:032x}", rows(4), received_at=NOW))
    stats = EventLoader(consumer="one", read_count=7).drain()
    assert (stats.batches, stats.events, stats.dead_letters) == (30, 120, 0)
    assert Event.objects.count() == 120 and LoadedBatch.objects.count() == 30
    assert redis().xlen(stream_key(0)) == 0
    assert redis().xpending(stream_key(0), "loaders")["pending"] == 0
    assert stream_sink.backlog()["pending_batches"] == 0


def test_a_loader_stopped_between_commit_and_ack_writes_nothing_twice(stream_sink, monkeypatch):
    for i in range(5):
        stream_sink.write(Batch(f"{i:032x}", rows(3), received_at=NOW))
    crashing = EventLoader(consumer="crashes")

    def crash(*_args, **_kwargs):
        raise SystemExit("killed after the commit, before XACK")

    monkeypatch.setattr(crashing, "_finish", crash)
    with pytest.raises(SystemExit):
        crashing.run_once()
    assert Event.objects.count() == 15  # committed
    assert redis().xpending(stream_key(0), "loaders")["pending"] == 5  # not acknowledged
    stats = EventLoader(consumer="successor", claim_idle_seconds=0).drain()
    assert stats.claimed == 5 and stats.duplicates == 5 and stats.batches == 0
    assert Event.objects.count() == 15  # no duplicates
    assert redis().xlen(stream_key(0)) == 0


def test_the_same_consumer_restarted_reads_its_own_pending_batches_first(stream_sink, monkeypatch):
    for i in range(3):
        stream_sink.write(Batch(f"{i:032x}", rows(2), received_at=NOW))
    first = EventLoader(consumer="same-name")
    monkeypatch.setattr(first, "_write", lambda *_a: (_ for _ in ()).throw(SystemExit()))
    with pytest.raises(SystemExit):
        first.run_once()
    assert Event.objects.count() == 0
    stats = EventLoader(consumer="same-name").drain()  # long claim idle: no XAUTOCLAIM needed
    assert stats.batches == 3 and stats.claimed == 0
    assert Event.objects.count() == 6


def test_batches_a_stopped_loader_read_are_claimed_by_another(stream_sink):
    for i in range(8):
        stream_sink.write(Batch(f"{i:032x}", rows(2), received_at=NOW))
    from microadjust_cms.tracking.loader import LoadStats

    dead = EventLoader(consumer="dead")
    assert len(dead._read(0, LoadStats(), None)) == 8  # read, then it "dies"
    waiting = EventLoader(consumer="other", claim_idle_seconds=3600).drain()
    assert waiting.batches == 0  # not idle long enough to be claimed
    stats = EventLoader(consumer="other", claim_idle_seconds=0).drain()
    assert stats.claimed == 8 and stats.batches == 8
    assert Event.objects.count() == 16


def test_a_batch_delivered_twice_is_stored_once(stream_sink):
    batch = Batch("d" * 32, rows(3), received_at=NOW)
    stream_sink.write(batch)
    stream_sink.write(batch)  # same batch id (a retried append)
    stats = EventLoader(consumer="one").drain()
    assert stats.batches == 1 and stats.duplicates == 1
    assert Event.objects.count() == 3


def test_unreadable_entries_go_to_the_dead_letters_with_the_reason(stream_sink):
    stream_sink.write(Batch("a" * 32, rows(2), received_at=NOW))
    key = stream_key(0)
    redis().xadd(key, {"garbage": "1"})
    redis().xadd(key, {"b": "x" * 32, "v": "v" * 32, "d": "", "r": "1", "e": "[[1,2]]"})
    redis().xadd(key, {"b": "y" * 32, "v": "v" * 32, "d": "", "r": "1", "e": "{not json"})
    stream_sink.write(Batch("b" * 32, rows(2), received_at=NOW))
    stats = EventLoader(consumer="one").drain()
    assert stats.batches == 2 and stats.dead_letters == 3
    assert Event.objects.count() == 4
    letters = redis().xrange(dead_letter_key(0))
    reasons = [fields[b"reason"].decode() for _id, fields in letters]
    assert len(reasons) == 3 and all(reason.startswith(("unreadable", "an event")) for reason in reasons)
    assert redis().xlen(key) == 0  # acknowledged and deleted: nothing left to retry forever
    assert stream_sink.backlog()["dead_letters"] == 3


def test_a_batch_the_database_refuses_goes_to_the_dead_letters_alone(stream_sink):
    """A value out of the column's range: PostgreSQL refuses it (SQLite stores what it gets,
    so there the batch loads); the other batches of the same read load either way."""
    stream_sink.write(Batch("a" * 32, rows(2), received_at=NOW))
    bad = [["dwell", T, None, "", "", "hero", "v1", 5, "", "", "", 70000]]
    redis().xadd(stream_key(0), {"b": "c" * 32, "v": "v" * 32, "d": "", "r": str(T),
                                 "e": json.dumps(bad)})
    stream_sink.write(Batch("b" * 32, rows(2), received_at=NOW))
    stats = EventLoader(consumer="one").drain()
    if connection.vendor == "postgresql":  # smallint position: 70000 is out of range
        assert stats.batches == 2 and stats.dead_letters == 1
        assert Event.objects.count() == 4
        reason = redis().xrange(dead_letter_key(0))[0][1][b"reason"].decode()
        assert reason.startswith("refused by the database")
        assert not LoadedBatch.objects.filter(batch_id="c" * 32).exists()
    else:
        assert stats.batches == 3 and Event.objects.count() == 5
    assert redis().xlen(stream_key(0)) == 0


def test_parse_entry_round_trips_what_the_sink_writes(stream_sink):
    batch = Batch("e" * 32, rows(2), device="mobile", received_at=NOW)
    stream_sink.write(batch)
    [(_id, fields)] = redis().xrange(stream_key(0))
    batch_id, parsed = parse_entry(fields)
    assert batch_id == batch.batch_id
    received_ms = int(NOW.timestamp() * 1000)
    assert parsed[0][:5] == ("e" * 32, received_ms, "mobile", "dwell", T)
    assert parsed[1][-2:] == (1, "cluster-2 deal-hunters")  # position, segments
    assert parsed[0][-2:] == (0, "")


def test_an_entry_written_before_events_carried_segments_loads_without_them(stream_sink):
    """A stream entry from the previous version (a field fewer an event) still loads."""
    old = [[*values[:-1]] for values in json.loads(encode_rows(rows(2)))]
    redis().xadd(stream_key(0), {"b": "o" * 32, "v": "v" * 32, "d": "", "r": str(T), "e": json.dumps(old)})
    stats = EventLoader(consumer="one").drain()
    assert (stats.batches, stats.events, stats.dead_letters) == (1, 2, 0)
    assert list(Event.objects.values_list("segments", flat=True)) == ["", ""]


def copy_fields(body: bytes) -> list[list]:
    """COPY's text format read back (the escapes ``copy_text`` writes)."""
    rows = []
    for line in body.decode().split("\n")[:-1]:
        fields = []
        for field in line.split("\t"):
            if field == "\\N":
                fields.append(None)
                continue
            out, i = [], 0
            while i < len(field):
                if field[i] == "\\":
                    out.append({"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}[field[i + 1]])
                    i += 2
                else:
                    out.append(field[i])
                    i += 1
            fields.append("".join(out))
        rows.append(fields)
    return rows


text_values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x1d\x1e\x1f"),
                      max_size=20)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(text_values, min_size=9, max_size=9),
       numbers=st.lists(st.one_of(st.none(), st.integers(0, 32767)), min_size=3, max_size=3),
       times=st.lists(st.integers(0, 253_402_300_799_999), min_size=2, max_size=2))
def test_copy_text_is_read_back_as_written(texts, numbers, times):
    row = ("v" * 32, times[0], texts[0], texts[1], times[1], numbers[0], texts[2], texts[3],
           texts[4], texts[5], numbers[1], texts[6], texts[7], "a b", numbers[2], texts[8])
    [fields] = copy_fields(copy_text([row]))
    assert len(fields) == 16
    assert [fields[i] for i in (2, 3, 6, 7, 8, 9, 11, 12, 15)] == texts
    assert [None if fields[i] is None else int(fields[i]) for i in (5, 10, 14)] == numbers
    for index, ms in ((1, times[0]), (4, times[1])):
        parsed = datetime.strptime(fields[index], "%Y-%m-%d %H:%M:%S.%f+00").replace(tzinfo=UTC)
        assert round(parsed.timestamp() * 1000) == ms


def test_copy_text_refuses_a_value_holding_its_separators():
    row = ("v" * 32, T, "", "dwell", T, None, "a\x1fb", "", "", "", None, "", "", "", None, "")
    with pytest.raises(ValueError):
        copy_text([row])


def test_an_entry_holding_an_escaped_control_character_is_a_dead_letter(stream_sink):
    redis().xadd(stream_key(0), {"b": "z" * 32, "v": "v" * 32, "d": "", "r": str(T), "e": json.dumps(
        [["dwell", T, None, "/a\x1f", "", "hero", "v1", 5, "", "", "", 1]])})
    stats = EventLoader(consumer="one").drain()
    assert stats.dead_letters == 1 and Event.objects.count() == 0
    reason = redis().xrange(dead_letter_key(0))[0][1][b"reason"].decode()
    assert "control character" in reason


def test_text_with_backslashes_tabs_and_quotes_is_stored_as_written(stream_sink):
    events = [{"type": "click", "t": T, "block": "hero", "variant": "v1",
               "name": 'back\\slash "quoted" \\N tab-less', "path": "/a\\b/"}]
    stream_sink.write(Batch("q" * 32, validate_batch({"v": 1, "events": events}, now=NOW,
                                                      max_events=10), received_at=NOW))
    EventLoader(consumer="one").drain()
    event = Event.objects.get()
    assert event.name == 'back\\slash "quoted" \\N tab-less' and event.path == "/a\\b/"
    assert event.occurred_at == datetime.fromtimestamp(T / 1000, tz=UTC)


def test_the_command_drains_once_and_prints_its_progress_line(stream_sink):
    for i in range(4):
        stream_sink.write(Batch(f"{i:032x}", rows(5), received_at=NOW))
    out = io.StringIO()
    call_command("microadjust_load_events", "--once", "--consumer", "cmd", stdout=out)
    assert out.getvalue().startswith("loaded 20 events in 4 batches")
    assert Event.objects.count() == 20


def test_the_celery_task_drains(stream_sink):
    from microadjust_cms.tasks import load_events

    stream_sink.write(Batch("f" * 32, rows(3), received_at=NOW))
    assert load_events.apply(kwargs={"max_seconds": 5}).get().startswith("loaded 3 events")
    assert Event.objects.count() == 3


def test_several_shards_are_loaded_and_a_visitor_stays_in_one(stream_sink, settings):
    settings.MICROADJUST_EVENT_STREAM_SHARDS = 4
    visitors = [f"{i:032x}" for i in range(20)]
    for visitor in visitors:
        stream_sink.write(Batch(visitor, rows(2), received_at=NOW))
        stream_sink.write(Batch(visitor, rows(2), received_at=NOW))
    lengths = [redis().xlen(stream_key(shard)) for shard in range(4)]
    assert sum(lengths) == 40 and sum(1 for n in lengths if n) > 1
    EventLoader(consumer="a", shards=[0, 1]).drain()
    EventLoader(consumer="b", shards=[2, 3]).drain()
    assert Event.objects.count() == 80


@pytest.mark.django_db(transaction=True)
def test_loaders_in_threads_share_the_backlog_and_write_each_batch_once(stream_sink):
    from microadjust_cms.tracking.loader import drain_in_threads

    for i in range(60):
        stream_sink.write(Batch(f"{i:032x}", rows(3), received_at=NOW))
    stats = drain_in_threads(3, consumer="threads", read_count=5)
    assert stats.batches == 60 and stats.events == 180 and stats.duplicates == 0
    assert Event.objects.count() == 180 and LoadedBatch.objects.count() == 60
    consumers = {c["name"].decode() for c in redis().xinfo_consumers(stream_key(0), "loaders")}
    assert consumers == {"threads-0", "threads-1", "threads-2"}


def test_encoded_rows_follow_row_fields():
    from microadjust_cms.tracking.event_store import ROW_FIELDS
    from microadjust_cms.tracking.sinks.redis_stream import encode_rows

    row = {name: f"<{name}>" for name in ROW_FIELDS}
    row["occurred_at"] = NOW
    [encoded] = json.loads(encode_rows([row]))
    expected = [f"<{name}>" for name in ROW_FIELDS]
    expected[ROW_FIELDS.index("occurred_at")] = int(NOW.timestamp() * 1000)
    assert encoded == expected


def test_a_round_announces_its_earliest_event_to_the_rollups(stream_sink):
    """The loader's backlog can be hours old: it tells the rollups (``tracking.hooks``) which
    periods its rows fall in, so the next refresh rebuilds them."""
    from microadjust_cms.analytics.models import RollupState

    stream_sink.write(Batch("1" * 32, rows(3), received_at=NOW))
    early = validate_batch({"v": 1, "events": [{"type": "pageview", "t": T - 3_600_000, "path": "/"}]},
                           now=NOW, max_events=10)
    stream_sink.write(Batch("2" * 32, early, received_at=NOW))
    EventLoader(consumer="one").drain()
    assert RollupState.objects.get().dirty_from == datetime.fromtimestamp((T - 3_600_000) / 1000, tz=UTC)
