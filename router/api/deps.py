"""Request dependencies: the runtime and who is calling.

Endpoints open their own ``runtime.db.session()`` so the commit happens before
the response is built: an error anywhere rolls back and nothing is written.

The dependencies every publish runs are ``async``: FastAPI runs a plain ``def``
dependency in its thread pool, and three of them cost a publish three thread hand-offs
(decision 85). Only a key the cache does not hold goes to a thread for its lookup.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from router.api.auth import Principal, bearer, principal, tenant_for_key
from router.api.publisher import Publisher
from router.core.errors import Problem, ValidationFailed
from router.core.inputs import unstorable
from router.core.security import hash_secret
from router.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_publisher(request: Request) -> Publisher:
    publisher: Publisher = request.app.state.publisher
    return publisher


async def get_tenant(request: Request,
                     runtime: Annotated[Runtime, Depends(get_runtime)]) -> str:
    token = bearer(request)
    digest = hash_secret(token)  # the cache never holds a key in the clear
    cached = runtime.key_cache.get(digest)
    if cached is not None:
        return cached
    tenant = await run_in_threadpool(_lookup_tenant, runtime, token)
    runtime.key_cache.put(digest, tenant)
    return tenant


def _lookup_tenant(runtime: Runtime, token: str) -> str:
    with runtime.db.session() as s:
        return tenant_for_key(s, token)


def get_principal(request: Request,
                  runtime: Annotated[Runtime, Depends(get_runtime)]) -> Principal:
    token = bearer(request)
    with runtime.db.session() as s:
        return principal(s, token, runtime.config.api.signing_grace_s)


async def storable_params(conn: HTTPConnection) -> None:
    """Path and query parameters must be storable too (see router.core.inputs)."""
    params = [*conn.path_params.items(), *conn.query_params.multi_items()]
    problems = [Problem(why, path=name) for name, value in params
                if isinstance(value, str) and (why := unstorable(value))]
    if problems:
        raise ValidationFailed(problems)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]
TenantDep = Annotated[str, Depends(get_tenant)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
