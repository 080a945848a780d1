"""`/openapi.json` with the event catalogue in force: the event types an event may
name and the rows a settings document may hold are those of the rule set that
validates them, so the schema and the validation cannot drift."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from router.runtime import Runtime


def install(app: FastAPI, runtime: Runtime) -> None:
    base: dict[str, Any] = {}
    cached: list[Any] = [None, None]  # the catalogue it was built for, the schema

    def openapi() -> dict[str, Any]:
        if not base:
            base.update(get_openapi(title=app.title, version=app.version,
                                    description=app.description, routes=app.routes))
        events = runtime.engine.ruleset.events
        if cached[0] is not events:  # a rule set was swapped in
            cached[:] = [events, with_catalogue(base, sorted(events))]
        schema: dict[str, Any] = cached[1]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def with_catalogue(base: dict[str, Any], types: list[str]) -> dict[str, Any]:
    schema = copy.deepcopy(base)
    schemas = schema["components"]["schemas"]
    schemas["Event"]["properties"]["type"]["enum"] = types
    for name in ("SettingsIn", "SettingsIn-Input", "SettingsIn-Output"):
        if name in schemas:
            schemas[name]["properties"]["advanced"]["propertyNames"] = {"enum": ["all", *types]}
    return schema
