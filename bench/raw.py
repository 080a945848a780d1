"""Raw limits of the machine, measured in the same run as the workloads:

- durable_rules assert + retract per second, for the W1 rule set and event shape
  (the C engine through its Python host, facts prepared beforehand);
- PostgreSQL rows per second for the feed-row shape: COPY, and multi-row INSERT
  (1,000 rows per statement), into the real ``feed_items`` table with its indexes;
- Redis pipelined pushes per second (LPUSH of a dramatiq-sized message, 1,000 per
  pipeline round trip);
- ``http_ece.encrypt`` per second (aes128gcm, a fresh ephemeral key each, as pywebpush).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any

import psycopg
import redis
from durable import engine as durable

from bench import feed_bench, push_bench
from bench import routing_bench as rb
from bench.common import REDIS_URL, Row, Sizes, pg_schema, progress, tmpdir
from router.ruleset.engine import RuleEngine
from router.ruleset.rulefile import load_ruleset

MESSAGE_BYTES = 600  # a dramatiq message carrying 100 ids is about this size


def measure(sizes: Sizes) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    progress("raw: durable_rules assert + retract (W1 rule set) ...")
    raw.update(rules(sizes.raw_rules_events, sizes.w1_extra_rules))
    progress(f"raw:   {raw['rules_assert_retract_per_s']:,.0f} assert+retract/s "
             f"({raw['rules_fired_per_fact']:.1f} rules fire per fact)")
    progress("raw: PostgreSQL COPY and multi-row INSERT, feed-row shape ...")
    raw.update(postgres(sizes.raw_pg_rows))
    progress(f"raw:   COPY {raw['pg_copy_rows_per_s']:,.0f} rows/s, multi-row INSERT "
             f"{raw['pg_insert_rows_per_s']:,.0f} rows/s")
    progress("raw: Redis pipelined LPUSH ...")
    raw["redis_push_per_s"] = redis_push(sizes.raw_redis_pushes)
    progress(f"raw:   {raw['redis_push_per_s']:,.0f} pushes/s")
    progress("raw: http_ece.encrypt (aes128gcm) ...")
    raw["http_ece_per_s"] = encryptions(sizes.raw_encryptions)
    progress(f"raw:   {raw['http_ece_per_s']:,.0f} encryptions/s")
    return raw


def rows(raw: dict[str, Any]) -> list[Row]:
    return [
        Row("raw", f"durable_rules assert+retract: {raw['rules_assert_retract_per_s']:,.0f}/s",
            f"{raw['rules_count']} rules, {raw['rules_fired_per_fact']:.1f} fire per fact",
            "-", "info", raw["rules_assert_retract_per_s"], "facts/s"),
        Row("raw", f"PostgreSQL COPY: {raw['pg_copy_rows_per_s']:,.0f} rows/s",
            "feed-row shape, real table + indexes", "-", "info", raw["pg_copy_rows_per_s"],
            "rows/s"),
        Row("raw", f"PostgreSQL multi-row INSERT: {raw['pg_insert_rows_per_s']:,.0f} rows/s",
            "1,000 rows per statement", "-", "info", raw["pg_insert_rows_per_s"], "rows/s"),
        Row("raw", f"Redis pipelined push: {raw['redis_push_per_s']:,.0f}/s",
            f"LPUSH {MESSAGE_BYTES} B, 1,000 per round trip", "-", "info",
            raw["redis_push_per_s"], "pushes/s"),
        Row("raw", f"http_ece.encrypt: {raw['http_ece_per_s']:,.0f}/s",
            "aes128gcm, fresh key", "-", "info", raw["http_ece_per_s"], "encryptions/s"),
    ]


# ---------------------------------------------------------------- durable_rules


def rules(n: int, n_extra: int) -> dict[str, Any]:
    from bench.routing_bench import build_rules

    with tmpdir("raw-rules") as tmp:
        ruleset = load_ruleset(build_rules(tmp, n_extra))
    engine = RuleEngine(ruleset)
    docs = [e.as_doc() for e in rb.events("bench", n)]
    current = engine._current
    host = engine._host
    facts = [dict(current.shape.fact(d, uuid.uuid4().hex)) for d in docs]
    fired = 0
    with engine._lock:
        for fact in facts[: min(100, n)]:  # warm-up on other ids
            _assert_retract(host, current.name, {**fact, "id": uuid.uuid4().hex})
        engine._fired.clear()
        started = time.perf_counter()
        for fact in facts:
            _assert_retract(host, current.name, fact)
            fired += len(engine._fired)
            engine._fired.clear()
        elapsed = time.perf_counter() - started
    started = time.perf_counter()
    for d in docs:
        engine.match(d)
    wrapped = time.perf_counter() - started
    return {"rules_assert_retract_per_s": n / elapsed, "rules_fired_per_fact": fired / n,
            "rules_herald_match_per_s": n / wrapped, "rules_count": len(ruleset.rules)}


def _assert_retract(host: Any, name: str, fact: dict[str, Any]) -> None:
    try:
        host.assert_fact(name, dict(fact))
    except durable.MessageNotHandledException:
        return
    host.retract_fact(name, dict(fact))


# ---------------------------------------------------------------- PostgreSQL


def postgres(n: int) -> dict[str, Any]:
    with pg_schema("bench_raw") as schema:
        url = schema.url
        data = list(feed_bench.rows(n, max(n // 100, 10)))
        with psycopg.connect(url) as conn:
            started = time.perf_counter()
            with conn.cursor() as cur, cur.copy(
                    f"COPY feed_items ({', '.join(feed_bench.COLUMNS)}) FROM STDIN") as copy:
                for row in data:
                    copy.write_row(row)
            conn.commit()
            copy_s = time.perf_counter() - started
            conn.execute("TRUNCATE feed_items")
            conn.commit()
            per = 1000
            cols = ", ".join(feed_bench.COLUMNS)
            one = "(" + ", ".join(["%s"] * len(feed_bench.COLUMNS)) + ")"
            started = time.perf_counter()
            with conn.cursor() as cur:
                for first in range(0, n, per):
                    chunk = data[first:first + per]
                    cur.execute(f"INSERT INTO feed_items ({cols}) VALUES "
                                + ", ".join([one] * len(chunk)),
                                [v for row in chunk for v in row])
            conn.commit()
            insert_s = time.perf_counter() - started
    copy_rate, insert_rate = n / copy_s, n / insert_s
    return {"pg_copy_rows_per_s": copy_rate, "pg_insert_rows_per_s": insert_rate,
            "pg_rows_per_s": max(copy_rate, insert_rate)}


# ---------------------------------------------------------------- Redis


def redis_push(n: int) -> float:
    client = redis.Redis.from_url(REDIS_URL)
    key = f"bench:raw:{uuid.uuid4().hex}"
    payload = json.dumps({"queue_name": "herald.email", "actor_name": "deliver_email",
                          "args": [[random.randrange(10**9) for _ in range(60)]]}).encode()
    payload = payload.ljust(MESSAGE_BYTES)
    try:
        started = time.perf_counter()
        for first in range(0, n, 1000):
            pipe = client.pipeline(transaction=False)
            for _ in range(min(1000, n - first)):
                pipe.lpush(key, payload)
            pipe.execute()
        elapsed = time.perf_counter() - started
    finally:
        client.delete(key)
        client.close()
    return n / elapsed


# ---------------------------------------------------------------- http_ece


def payload() -> bytes:
    """The plaintext of a typical Herald web push (as bench/push_bench.py builds it)."""
    from channels import push_payload as pp

    sub = {"endpoint": "http://127.0.0.1:1/push/x", "keys": {"p256dh": "", "auth": ""}}
    return pp.web_payload(push_bench._job(1, sub).extra["notice"])


def encryptions(n: int) -> float:
    return push_bench.bench_encrypt(n, payload())
