"""The FastAPI application and its lifespan (hub, embedded workers, rule versions)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router import __version__
from router.api import (
    codes,
    console,
    demo,
    errors,
    me,
    openapi,
    preferences,
    service,
    stream,
    unsub,
)
from router.api.deps import storable_params
from router.api.errors import error_body
from router.api.publisher import Publisher
from router.delivery.live import Hub
from router.runtime import Runtime

log = logging.getLogger("herald.api")
STATIC = Path(__file__).resolve().parent.parent / "static"


def create_app(runtime: Runtime, *, run_workers: bool | None = None) -> FastAPI:
    """Build the app. With an in-process broker (embedded mode) the workers and
    the sweeper run inside this process too."""
    if runtime.hub is None:
        runtime.hub = Hub()
        runtime.live.hub = runtime.hub
    api = runtime.config.api
    in_process = runtime.embedded if run_workers is None else run_workers
    runtime.publish_only = not in_process

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        assert runtime.hub is not None
        await runtime.hub.start(runtime.config.pubsub_url)
        runtime.follow_rules()
        sweeper = runtime.start_workers(threads=4) if in_process else None
        try:
            yield
        finally:
            publisher.close()
            if sweeper is not None:
                sweeper.stop()
            await runtime.hub.stop()

    app = FastAPI(title="Herald", version=__version__, lifespan=lifespan,
                  description="Rules-engine driven notification router. The live websocket "
                              "`WS /v1/me/stream` is described in AsyncAPI 3.0 at "
                              "[/asyncapi.json](/asyncapi.json).",
                  dependencies=[Depends(storable_params)])
    app.state.runtime = runtime
    app.state.publisher = publisher = Publisher(runtime)
    errors.install(app)
    for module in (service, codes, me, preferences, stream, unsub, demo):
        app.include_router(module.routes)
    console.install(app)
    _static_routes(app)
    openapi.install(app, runtime)
    _body_limit(app, api.max_body_bytes)
    return app


def _static_routes(app: FastAPI) -> None:
    files = {"/inbox.js": ("inbox.js", "text/javascript"), "/sw.js": ("sw.js", "text/javascript"),
             "/preferences.js": ("preferences.js", "text/javascript"),
             "/demo": ("demo.html", "text/html")}
    for path, (name, media) in files.items():
        def serve(name: str = name, media: str = media) -> Response:
            return FileResponse(STATIC / name, media_type=media,
                                headers={"Service-Worker-Allowed": "/",
                                         "Cache-Control": "no-cache"})
        app.get(path, include_in_schema=False)(serve)

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint(request: Request) -> Response:
        from router.api.auth import bearer
        from router.core.errors import AuthError
        from router.core.metrics import render
        from router.core.security import same

        wanted = request.app.state.runtime.config.api.metrics_token
        if wanted and not same(bearer(request), wanted):
            raise AuthError("wrong metrics token", code="auth.invalid_key")
        body, media = render()
        return Response(body, media_type=media)

    @app.get("/asyncapi.json", include_in_schema=False)
    def asyncapi_document(request: Request) -> dict[str, Any]:
        from router.api.asyncapi import document

        return document(request.app.state.runtime.config.public_url)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/push/vapid-public-key", tags=["push"])
    def vapid_public_key(request: Request) -> dict[str, str | None]:
        """The VAPID application server key; null when push is not configured."""
        key = request.app.state.runtime.config.push.vapid_public_key
        return {"public_key": key or None}


def _body_limit(app: FastAPI, limit: int) -> None:
    app.add_middleware(BodyLimit, limit=limit)


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` once a body passes the limit; FastAPI re-raises
    HTTPExceptions met while reading a body, so the one error handler answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


class BodyLimit:
    """Refuse a request body over the limit with 413, whatever its framing: at once
    when Content-Length says so, else as the body streams in (chunked uploads have
    no length). Plain ASGI, not ``@app.middleware("http")``, which wraps every request
    in an extra task and stream."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_length(scope) > self.limit:
            await self._refuse(scope, receive, send)
            return
        counted, started = 0, False

        async def counting_receive() -> Message:
            nonlocal counted
            message = await receive()
            counted += len(message.get("body", b""))
            if counted > self.limit:
                raise BodyTooLarge(self.limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:  # too late for a status: the server closes the connection
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = JSONResponse(error_body("payload_too_large", f"request body over {self.limit} bytes"),
                               status_code=413)
        await refused(scope, receive, send)


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0
