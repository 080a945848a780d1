"""Access tokens and code controls (DESIGN §4), service side."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from router.api.deps import RuntimeDep, TenantDep
from router.api.errors import documented
from router.core.enums import ReceiverKind
from router.core.inputs import Input
from router.delivery import access, feed

routes = APIRouter(prefix="/v1", tags=["access"], responses=documented(401, 404, 422, 503))


class TokenIn(Input):
    token: str = Field(min_length=1, max_length=200)


@routes.post("/access-tokens:verify")
def verify(runtime: RuntimeDep, tenant: TenantDep, body: TokenIn) -> dict[str, Any]:
    """The token's scope, or why it is refused: unknown, expired or revoked."""
    with runtime.db.session() as s:
        return access.verify(s, body.token, tenant).as_dict()


@routes.post("/codes/{code_id}:revoke-access")
def revoke_access(runtime: RuntimeDep, tenant: TenantDep, code_id: str) -> dict[str, Any]:
    """"Log out code users": every token issued for this code stops working at once."""
    with runtime.db.session() as s:
        return {"code_id": code_id, "revoked": access.revoke_code(s, tenant, code_id)}


@routes.post("/codes/{code_id}:clear-notifications")
def clear_notifications(runtime: RuntimeDep, tenant: TenantDep, code_id: str) -> dict[str, Any]:
    """"Delete all notifications": older items are hidden from code users only."""
    with runtime.db.session() as s:
        cutoff = access.clear_notifications(s, tenant, code_id)
        changed = feed.cleared(s, tenant, code_id, cutoff)
    runtime.live.tell([{"tenant": tenant, "kind": ReceiverKind.CODE_USER, "id": rid,
                        "frame": frame} for rid, frame in changed])
    return {"code_id": code_id, "cutoff": cutoff.isoformat()}
