"""The API process's publisher thread (router.api.publisher) lives with the app's
lifespan: it stops when the app stops, after answering what was submitted, and the app
served again publishes again (a test client, or a server that embeds the app, serves it
more than once). In process, on the real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio

import httpx

from router.api.app import create_app
from router.core.config import load_config
from router.runtime import Runtime
from tests.conftest import PG_URL
from tests.harness import REDIS_BASE, claim_redis_db, release_redis_db
from tests.pipeline.test_service_e2e import ticket


def test_an_app_served_twice_publishes_each_time(pg, new_tenant_key):
    _, key, _ = new_tenant_key("Twice")
    db, lock = claim_redis_db()
    runtime = Runtime(load_config(database_url=PG_URL, broker_url=f"{REDIS_BASE}/{db}",
                                  smtp={"port": 1}))
    app = create_app(runtime, run_workers=False)

    async def serve(serving: int) -> tuple[httpx.Response, httpx.Response]:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://herald",
                headers={"Authorization": f"Bearer {key}"}) as client:
            first = await client.post("/v1/events", json=ticket(f"twice-{serving}"))
            again = await client.post("/v1/events", json=ticket(f"twice-{serving}"))
            return first, again

    try:
        for serving in range(2):
            first, again = asyncio.run(serve(serving))
            assert first.status_code == again.status_code == 202, first.text
            assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    finally:
        runtime.close()
        release_redis_db(lock)
