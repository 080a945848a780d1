"""One handler renders every error: ``{"error": {"code", "message", ...}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from router.core.errors import HeraldError, Problem, RateLimited, ValidationFailed
from router.routing.events import unknown_type

log = logging.getLogger("herald.api")


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, **extra}}


async def herald_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HeraldError)
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse({"error": exc.as_dict()}, status_code=exc.status, headers=headers)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [Problem(message=e["msg"], path=".".join(str(p) for p in _field_path(e["loc"])))
                for e in exc.errors()]
    return await herald_error(request, ValidationFailed(
        problems + _event_type_problems(request, exc.body)))


def _field_path(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The field's own path: `subject.kind`, `0.id`, `item_id` (not `body.`, `path.`)."""
    return loc[1:] if loc and loc[0] in ("body", "path", "query", "header", "cookie") else loc


EVENT_ROUTES = ("publish_event", "publish_batch", "explain")


def _event_type_problems(request: Request, body: Any) -> list[Problem]:
    """Unknown event types, reported with the schema's problems (every problem at once)."""
    if getattr(request.scope.get("route"), "name", "") not in EVENT_ROUTES:
        return []
    known = request.app.state.runtime.engine.ruleset.events
    docs, batch = (body, True) if isinstance(body, list) else ([body], False)
    return [problem for i, doc in enumerate(docs) if isinstance(doc, dict)
            and isinstance(doc.get("type"), str)
            for problem in unknown_type(doc["type"], known, f"{i}." if batch else "")]


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # FastAPI could not read the body (e.g. not UTF-8 JSON)
        return await herald_error(request, ValidationFailed(
            [Problem("not a JSON document (UTF-8)", path="body")]))
    code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
        exc.status_code, "http_error")
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                        headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path (Starlette lists only the first route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def database_down(_request: Request, exc: Exception) -> JSONResponse:
    log.error("db.unavailable", extra={"error": str(exc)[:300]})
    return JSONResponse(error_body("unavailable", "the database is unavailable; retry shortly"),
                        status_code=503, headers={"Retry-After": "2"})


async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("api.unexpected", exc_info=exc)
    return JSONResponse(error_body("internal", "internal error; it has been logged"), status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(HeraldError, herald_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(OperationalError, database_down)
    app.add_exception_handler(Exception, unexpected)


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers an endpoint can give."""
    text = {400: "Bad request", 401: "Missing, wrong or expired credential",
            403: "A valid credential of a kind that may not do this (a code user's token)",
            404: "Unknown id (another tenant's ids answer the same)",
            409: "Conflict", 413: "Request body too large, or a batch larger than the publish burst",
            422: "Invalid input: every problem with its field path",
            429: "Rate limited: see Retry-After", 503: "A backing service is unavailable"}
    return {code: {"model": ErrorBody, "description": text[code]} for code in codes}
