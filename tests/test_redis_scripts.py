"""``redis_scripts.Script``: one EVALSHA on the thread's own connection, and what can go wrong
with a held connection (a restart, a flushed script cache, an error answer, a timeout half way
through an answer, threads, a fork). Against a redis-server of the test's own (fault_servers),
never the shared one: these tests kill it and flush its scripts."""

from __future__ import annotations

import os
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeout
from redis.retry import Retry

from microadjust_cms.redis_scripts import Script, _connection, release_held

from .fault_servers import RedisServer

ECHO = "return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}"


@pytest.fixture
def server(tmp_path):
    own = RedisServer(tmp_path)
    own.start()
    yield own
    own.kill()


def client_of(server: RedisServer, **options) -> redis.Redis:
    return redis.Redis.from_url(server.url, **options)


def test_one_command_a_call_and_one_pool_checkout_a_thread(server, monkeypatch):
    client = client_of(server)
    pool = client.connection_pool
    checkouts, sent = [], []
    original_get, original_send = pool.get_connection, redis.Connection.send_packed_command
    monkeypatch.setattr(pool, "get_connection", lambda *a: checkouts.append(1) or original_get(*a))
    monkeypatch.setattr(redis.Connection, "send_packed_command",
                        lambda self, command, *a, **k: sent.append(command) or original_send(self, command, *a, **k))
    script = Script(client, ECHO)
    client.script_load(ECHO)
    sent.clear()
    results = [script(["k"], ["a", i]) for i in range(5)]
    assert results == [[b"k", b"a", i + 1] for i in range(5)]
    assert len(sent) == 5  # EVALSHA each time: no SCRIPT LOAD, no health check
    assert all(b"EVALSHA" in (b"".join(c) if isinstance(c, list) else c) for c in sent)
    assert len(checkouts) == 1 + 1  # ours, kept; and the client's own script_load above
    release_held(pool)


def test_a_flushed_script_cache_is_loaded_again(server):
    client = client_of(server)
    script = Script(client, ECHO)
    assert script(["k"], ["a", 1]) == [b"k", b"a", 2]
    client.script_flush()
    assert client.script_exists(script.sha) == [False]
    assert script(["k"], ["b", 2]) == [b"k", b"b", 3]
    assert client.script_exists(script.sha) == [True]
    release_held(client.connection_pool)


def test_a_restarted_server_is_reconnected_and_the_script_loaded(server):
    client = client_of(server)
    script = Script(client, ECHO)
    assert script(["k"], ["a", 1]) == [b"k", b"a", 2]
    held = _connection(client.connection_pool)
    server.kill()
    with pytest.raises(redis.ConnectionError):
        script(["k"], ["a", 1])
    server.start()
    # the held connection was dropped on the error, and its next command connects anew
    assert script(["k"], ["c", 5]) == [b"k", b"c", 6]
    assert _connection(client.connection_pool) is held
    release_held(client.connection_pool)


def test_an_error_answer_keeps_the_connection_in_step(server):
    client = client_of(server)
    failing = Script(client, "return redis.error_reply('no such thing')")
    echo = Script(client, ECHO)
    assert echo(["k"], ["a", 1]) == [b"k", b"a", 2]
    held = _connection(client.connection_pool)
    socket_before = held._sock
    with pytest.raises(ResponseError, match="no such thing"):
        failing([], [])
    assert held._sock is socket_before  # not reconnected: the answer was read whole
    assert echo(["k"], ["b", 2]) == [b"k", b"b", 3]
    release_held(client.connection_pool)


def test_a_timeout_half_way_never_hands_its_answer_to_the_next_call(server):
    """The late answer of a timed-out call stays on a socket that is dropped: the next call
    reads its own answer, not the previous one's."""
    client = client_of(server, socket_timeout=0.2, retry=Retry(NoBackoff(), 0))
    slow = Script(client, """
        local t = redis.call('TIME'); local stop = tonumber(t[1]) + 0.6 + tonumber(t[2]) / 1e6
        while true do
          local n = redis.call('TIME')
          if tonumber(n[1]) + tonumber(n[2]) / 1e6 > stop then break end
        end
        return 'late'""")
    echo = Script(client, ECHO)
    client.script_load(slow.source)
    with pytest.raises(RedisTimeout):
        slow([], [])
    time.sleep(0.8)  # the slow script has finished and its answer was sent
    assert echo(["k"], ["mine", 1]) == [b"k", b"mine", 2]
    release_held(client.connection_pool)


def test_each_thread_holds_its_own_connection(server):
    client = client_of(server)
    script = Script(client, ECHO)
    seen: dict[str, object] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            for i in range(50):
                assert script([name], [name, i]) == [name.encode(), name.encode(), i + 1]
            seen[name] = _connection(client.connection_pool)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            release_held(client.connection_pool)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({id(connection) for connection in seen.values()}) == 4


def test_a_forked_child_takes_a_connection_of_its_own(server):
    client = client_of(server)
    script = Script(client, ECHO)
    assert script(["k"], ["parent", 1]) == [b"k", b"parent", 2]
    parent_connection = _connection(client.connection_pool)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            ok = (script(["k"], ["child", 2]) == [b"k", b"child", 3]
                  and _connection(client.connection_pool) is not parent_connection)
            os.write(write_end, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write_end)
    _pid, status = os.waitpid(pid, 0)
    assert os.read(read_end, 1) == b"1"
    os.close(read_end)
    # the parent's connection still answers in step after the child's use of its own
    assert script(["k"], ["parent", 3]) == [b"k", b"parent", 4]
    release_held(client.connection_pool)
