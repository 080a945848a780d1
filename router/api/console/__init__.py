"""The admin console (issue #18): server-rendered pages for a tenant's admins, opened
with a console key. Rules, who gets what, explain, activity, failures, health."""

from __future__ import annotations

from fastapi import FastAPI

from router.api.console import activity, audience, explainer, failures, health, login, rulepages
from router.api.console.base import console_error, routes
from router.core.errors import HeraldError

PAGES = (login, rulepages, audience, explainer, activity, failures, health)


def install(app: FastAPI) -> None:
    """The console's routes, and its error pages (after router.api.errors.install)."""
    app.include_router(routes)
    app.add_exception_handler(HeraldError, console_error)
