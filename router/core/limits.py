"""Per-tenant publish rate limit: a token bucket, in Redis when there is one.

The Redis bucket is one Lua script (atomic across API replicas). If Redis is
unreachable the limiter lets the request through and logs it: publishing
depends on the database, not on the limiter. A batch costs one token per event;
one larger than the burst could never be admitted and is refused outright.

The same call keeps the tenant's recent volume: the events it published, each
weighed down by e^(-age / window_s), so a steady r events/s reads about r x window_s.
The API routes a tenant above ``api.bulk_lane_after`` on the bulk lane (fair lanes,
docs/decisions.md), in the same round trip as the rate limit.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from router.core.errors import BatchOverBurst, HeraldError, RateLimited

log = logging.getLogger("herald.limits")

_LUA = """
local tokens = tonumber(redis.call('HGET', KEYS[1], 't') or ARGV[2])
local stamp = tonumber(redis.call('HGET', KEYS[1], 's') or ARGV[4])
local recent = tonumber(redis.call('HGET', KEYS[1], 'r') or '0')
local rate, burst, now, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[3])
local window = tonumber(ARGV[5])
local age = math.max(0, now - stamp)
tokens = math.min(burst, tokens + age * rate)
recent = recent * math.exp(-age / window)
if tokens < cost then
  return {tostring((cost - tokens) / rate), tostring(recent)}
end
recent = recent + cost
redis.call('HSET', KEYS[1], 't', tokens - cost, 's', now, 'r', recent)
redis.call('EXPIRE', KEYS[1], math.ceil(math.max(burst / rate, 5 * window)) + 10)
return {'0', tostring(recent)}
"""


def publish_path_redis(url: str, timeout_s: float) -> redis.Redis[bytes]:
    """A Redis client that gives up after timeout_s: a timeout is never retried (a frozen
    Redis would cost every retry), a dropped pooled connection is retried once at once."""
    return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)))


class Limiter:
    def __init__(self, rate: float, burst: int, redis_url: str = "", timeout_s: float = 0.2,
                 window_s: float = 10.0) -> None:
        self.rate, self.burst, self.window_s = rate, burst, window_s
        self._redis = publish_path_redis(redis_url, timeout_s) if redis_url else None
        self._sha = hashlib.sha1(_LUA.encode()).hexdigest()  # noqa: S324 - how Redis names scripts
        self._local: dict[str, tuple[float, float, float]] = {}  # tokens, stamp, recent
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()

    def take(self, tenant: str, cost: int = 1) -> float:
        """Spend `cost` tokens or raise RateLimited with the seconds to wait. Returns the
        tenant's recent volume, these events included (0 when Redis did not answer)."""
        [answer] = self.take_many([(tenant, cost)])
        if isinstance(answer, HeraldError):
            raise answer
        return answer

    def take_many(self, requests: list[tuple[str, int]]) -> list[float | HeraldError]:
        """`take` for each (tenant, cost) in order, in one Redis round trip: each answer is
        the tenant's recent volume, or the error that refuses that request alone."""
        asked = [(tenant, cost) for tenant, cost in requests if cost <= self.burst]
        outcomes = iter(self._take_redis(asked) if self._redis else
                        [self._take_local(tenant, cost) for tenant, cost in asked])
        answers: list[float | HeraldError] = []
        for _tenant, cost in requests:
            if cost > self.burst:  # could never be admitted: refused outright
                answers.append(BatchOverBurst(cost, self.burst))
                continue
            wait, recent = next(outcomes)
            answers.append(RateLimited(wait) if wait > 0 else recent)
        return answers

    def _take_redis(self, asked: list[tuple[str, int]]) -> list[tuple[float, float]]:
        """The script for each request, pipelined. Not through redis-py's `Script` on a
        pipeline: that costs every pipeline a SCRIPT EXISTS round trip. A server without
        the script refuses every call alike, so they are all sent again once it is loaded."""
        assert self._redis is not None
        try:
            for _attempt in range(2):
                pipe = self._redis.pipeline(transaction=False)
                now = time.time()
                for tenant, cost in asked:
                    pipe.evalsha(self._sha, 1, f"herald:rate:{tenant}",
                                 self.rate, self.burst, cost, now, self.window_s)
                results = pipe.execute(raise_on_error=False)
                if not any(isinstance(r, redis.exceptions.NoScriptError) for r in results):
                    for r in results:
                        if isinstance(r, Exception):
                            raise r
                    return [(float(wait), float(recent)) for wait, recent in results]
                self._redis.script_load(_LUA)  # type: ignore[no-untyped-call]
            raise redis.exceptions.NoScriptError("the limiter's script could not be loaded")
        except redis.RedisError as exc:
            log.warning("limits.redis_unavailable", extra={"error": str(exc)})
            return [(0.0, 0.0)] * len(asked)

    def _take_local(self, tenant: str, cost: int) -> tuple[float, float]:
        now = time.monotonic()
        with self._lock:
            tokens, stamp, recent = self._local.get(tenant, (float(self.burst), now, 0.0))
            tokens = min(self.burst, tokens + (now - stamp) * self.rate)
            recent *= math.exp(-(now - stamp) / self.window_s)
            if tokens < cost:
                return (cost - tokens) / self.rate, recent
            self._local[tenant] = (tokens - cost, now, recent + cost)
            return 0.0, recent + cost
