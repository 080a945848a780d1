"""Request dependencies: the runtime and who is calling.

Endpoints open their own ``runtime.db.session()`` so the commit happens before
the response is built: an error anywhere rolls back and nothing is written.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from router.api.auth import Principal, bearer, principal, tenant_for_key
from router.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def get_tenant(request: Request, runtime: Annotated[Runtime, Depends(get_runtime)]) -> str:
    token = bearer(request)
    with runtime.db.session() as s:
        return tenant_for_key(s, token)


def get_principal(request: Request,
                  runtime: Annotated[Runtime, Depends(get_runtime)]) -> Principal:
    token = bearer(request)
    with runtime.db.session() as s:
        return principal(s, token, runtime.settings.api.signing_grace_s)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
TenantDep = Annotated[str, Depends(get_tenant)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
