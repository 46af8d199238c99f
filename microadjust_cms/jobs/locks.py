"""Locks that keep two runs of one learning job kind from overlapping.

With django-redis as the lock cache it is a redis-py ``Lock`` (atomic, shared by every worker on
every host); with any other cache (locmem in the embedded demo) an entry added with ``cache.add``,
which is shared only by the processes that share the cache. Both expire ``JOB_LOCK_TIMEOUT``
seconds after the last refresh, so a worker that dies mid-run frees the lock.
"""

from __future__ import annotations

from django.core.cache import caches

from ..conf import get_setting


class JobLock:
    """The lock for one job kind, held on behalf of ``owner`` (a job id)."""

    def __init__(self, kind: str, owner: str) -> None:
        self.cache = caches[get_setting("JOB_LOCK_CACHE")]
        self.key = f"{get_setting('KEY_PREFIX')}:job-lock:{kind}"
        self.owner = owner
        self.timeout = get_setting("JOB_LOCK_TIMEOUT")

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another run holds it."""
        return bool(self.cache.add(self.key, self.owner, self.timeout))

    def refresh(self) -> None:
        """Push the expiry back (a long job calls this as it makes progress)."""
        if self.cache.get(self.key) == self.owner:
            self.cache.touch(self.key, self.timeout)

    def release(self) -> None:
        if self.cache.get(self.key) == self.owner:
            self.cache.delete(self.key)

    def is_held(self) -> bool:
        """Whether any run holds this kind's lock now."""
        return self.cache.get(self.key) is not None


class RedisJobLock(JobLock):
    """The same contract on a redis-py ``Lock``: acquire, extend and release are atomic."""

    def __init__(self, kind: str, owner: str) -> None:
        super().__init__(kind, owner)
        # thread_local=False: the progress callback may refresh from another thread than acquire.
        self._lock = self.cache.lock(self.key, timeout=self.timeout, blocking=False, thread_local=False)

    def acquire(self) -> bool:
        return bool(self._lock.acquire(blocking=False))

    def refresh(self) -> None:
        from redis.exceptions import LockError

        try:
            self._lock.reacquire()
        except LockError:  # expired and maybe taken by another run: nothing of ours to extend
            pass

    def release(self) -> None:
        from redis.exceptions import LockError

        try:
            self._lock.release()
        except LockError:
            pass

    def is_held(self) -> bool:
        return bool(self._lock.locked())


def job_lock(kind: str, owner: str) -> JobLock:
    """The lock for ``kind``: a Redis lock when the lock cache is django-redis."""
    cache = caches[get_setting("JOB_LOCK_CACHE")]
    from django_redis.cache import RedisCache

    lock_class = RedisJobLock if isinstance(cache, RedisCache) else JobLock
    return lock_class(kind, owner)

