"""`herald console-key create | list | revoke`: tenant admins' keys to the admin console."""

from __future__ import annotations

import argparse

from router.core.config import get_config
from router.directory import console_keys
from router.store.db import Database


def _database() -> Database:
    return Database(get_config().database_url)


def console_url() -> str:
    return get_config().public_url.rstrip("/") + "/console"


def cmd_create(args: argparse.Namespace) -> int:
    with _database().session() as s:
        row, secret = console_keys.create(s, args.tenant, args.name)
        key_id = row.id
    print(f"console key {key_id} for tenant {args.tenant} (shown once; only its hash is stored):")
    print(f"  {secret}")
    print(f"sign in at {console_url()}/login")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with _database().session() as s:
        rows = console_keys.listing(s, args.tenant)
        for row in rows:
            state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
            used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
            print(f"{row.id:>5}  {row.created_at:%Y-%m-%d %H:%M}  {state:<24}  last used {used}"
                  f"  {row.name}")
    if not rows:
        print(f"no console keys for tenant {args.tenant}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with _database().session() as s:
        console_keys.revoke(s, args.tenant, args.key_id)
    print(f"✓ console key {args.key_id} revoked; its console sessions end at once")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = sub.add_parser("console-key", help="keys to the admin console").add_subparsers(
        dest="console_key_command", required=True)
    p = keys.add_parser("create", help="a new console key for a tenant's admins (shown once)")
    p.add_argument("--tenant", required=True)
    p.add_argument("--name", default="", help="whose key it is, e.g. 'Ana (ops)'")
    p.set_defaults(func=cmd_create)
    p = keys.add_parser("list", help="a tenant's console keys (never the secrets)")
    p.add_argument("--tenant", required=True)
    p.set_defaults(func=cmd_list)
    p = keys.add_parser("revoke", help="revoke a console key; its sessions end at once")
    p.add_argument("key_id", type=int)
    p.add_argument("--tenant", required=True)
    p.set_defaults(func=cmd_revoke)
