"""`herald` commands that run or administer the service (serve, worker, tenants, ...)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the service commands to the parser (filled in as the pipeline lands)."""
    return None
