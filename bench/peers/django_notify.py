"""Peer for W2: django-notifications-hq's `notify.send` to N recipients on the same
PostgreSQL, in a schema of its own (created, migrated and dropped here).

    python -m bench.peers.django_notify --recipients 50000     # prints one JSON line

Runs in a subprocess of the bench (Django's settings are process-global). Needs the
`bench` extra (`pip install -e '.[bench]'`: Django 4.2 — django-notifications-hq
1.8.3 does not migrate on Django 5.1+). What is timed is only `notify.send(actor,
recipient=<queryset of N users>, verb=...)`: the library saves one Notification per
recipient, each its own INSERT and commit (Django autocommit).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

PG_BASE = os.environ.get("HERALD_BENCH_DATABASE_URL",
                         "postgresql://postgres@127.0.0.1:5432/test")


def available() -> str:
    """'' when the peer can run, else why not."""
    try:
        import django  # noqa: F401
        import notifications  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} not installed: pip install -e '.[bench]'"
    return ""


def run(recipients: int, timeout: float = 1800) -> dict[str, Any]:
    """Run the peer in a subprocess; returns its JSON result (or {'skipped': why})."""
    missing = available()
    if missing:
        return {"skipped": missing}
    proc = subprocess.run([sys.executable, "-m", "bench.peers.django_notify",
                           "--recipients", str(recipients)], capture_output=True, text=True,
                          timeout=timeout, cwd=os.path.dirname(os.path.dirname(
                              os.path.dirname(os.path.abspath(__file__)))))
    if proc.returncode != 0:
        raise RuntimeError(f"django peer failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _configure(schema: str) -> None:
    import django
    from django.conf import settings

    url = urlsplit(PG_BASE)
    settings.configure(
        DEBUG=False, USE_TZ=True, SECRET_KEY="bench-only",
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "notifications"],
        DATABASES={"default": {
            "ENGINE": "django.db.backends.postgresql", "NAME": url.path.lstrip("/") or "test",
            "USER": url.username or "postgres", "PASSWORD": url.password or "",
            "HOST": url.hostname or "127.0.0.1", "PORT": str(url.port or 5432),
            "OPTIONS": {"options": f"-c search_path={schema}"}}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        LOGGING_CONFIG=None,
    )
    django.setup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=50_000)
    args = parser.parse_args(argv)
    import psycopg

    schema = f"bench_dj_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        _configure(schema)
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from django.db import connection
        from notifications.models import Notification
        from notifications.signals import notify

        call_command("migrate", verbosity=0, interactive=False)
        User.objects.bulk_create([User(username=f"u{i}") for i in range(args.recipients)],
                                 batch_size=5000)
        actor = User.objects.create(username="actor")
        recipients = User.objects.filter(username__startswith="u")
        started = time.perf_counter()
        notify.send(actor, recipient=recipients, verb="deactivated",
                    description="Code C-1 was deactivated")
        elapsed = time.perf_counter() - started
        count = Notification.objects.count()
        connection.close()
    finally:
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    print(json.dumps({"recipients": args.recipients, "notifications": count,
                      "seconds": round(elapsed, 3), "per_s": round(count / elapsed, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
