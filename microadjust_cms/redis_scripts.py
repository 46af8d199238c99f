"""Lua scripts run on a thread's own Redis connection: the one round trip of the busiest paths.

The collect endpoint (the stream sink) and a personalized page view (the Redis profile store)
each send one ``EVALSHA``. Through redis-py's client, every command also checks a connection out
of the pool and back in (a lock, a ``poll`` for stale data on the socket, observability hooks)
and goes through ``Script``'s own bookkeeping: measured here, about twice the CPU of sending the
command and reading the answer. ``Script`` keeps one connection of the client's pool per thread
instead, taken the first time a thread runs a script and shared by every script on that pool.

What stays as redis-py does it: the command is packed and the answer parsed by the connection
(hiredis when installed); a connection error is retried with the connection's own ``Retry``, the
connection dropped first (as the client does, so a half-read answer never reaches the next
command); a script Redis has forgotten (a restart, ``SCRIPT FLUSH``) is loaded again. On Redis
Cluster, whose client routes each command by key, the client's own ``register_script`` runs it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

#: Per thread: id of a connection pool → (process id, the pool, the connection held from it).
_held = threading.local()


def _connection(pool: Any) -> Any:
    """This thread's connection from ``pool``: taken once, then kept. A forked child takes its
    own (the pool resets itself in a new process; the parent's socket is never shared)."""
    held = getattr(_held, "connections", None)
    if held is None:
        held = _held.connections = {}
    entry = held.get(id(pool))
    pid = os.getpid()
    if entry is None or entry[0] != pid or entry[1] is not pool:
        entry = held[id(pool)] = (pid, pool, pool.get_connection())
    return entry[2]


def release_held(pool: Any) -> None:
    """Give this thread's connection back to ``pool`` (a thread done with Redis; tests)."""
    entry = (getattr(_held, "connections", None) or {}).pop(id(pool), None)
    if entry is not None and entry[0] == os.getpid() and entry[1] is pool:
        pool.release(entry[2])


class Script:
    """``Script(client, source)(keys, args)``: ``EVALSHA`` on this thread's connection."""

    def __init__(self, client: Any, source: str) -> None:
        from redis.cluster import RedisCluster

        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 (Redis' script id)
        #: On Cluster the client routes the command (one connection per node), so it runs it.
        self.routed = client.register_script(source) if isinstance(client, RedisCluster) else None

    def __call__(self, keys: list, args: list) -> Any:
        if self.routed is not None:
            return self.routed(keys=keys, args=args)
        connection = _connection(self.client.connection_pool)
        return connection.retry.call_with_retry(
            lambda: self._run(connection, keys, args), lambda _error: connection.disconnect())

    def _run(self, connection: Any, keys: list, args: list) -> Any:
        try:
            try:
                return self._evalsha(connection, keys, args)
            except NoScriptError:  # Redis restarted or flushed its scripts: load it, once
                connection.send_command("SCRIPT", "LOAD", self.source)
                connection.read_response()
                return self._evalsha(connection, keys, args)
        except ResponseError:  # an error answer: the connection is still in step
            raise
        except BaseException:
            # A timeout half way through an answer, an interrupt: what is left on the socket
            # would be read as the next command's answer, so the connection is made anew.
            connection.disconnect()
            raise

    def _evalsha(self, connection: Any, keys: list, args: list) -> Any:
        connection.send_command("EVALSHA", self.sha, len(keys), *keys, *args)
        return connection.read_response()
