"""`herald` commands that run or administer the service."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from router.core.config import get_config


def _runtime() -> Any:
    from router.core import logs
    from router.runtime import Runtime

    config = get_config()
    logs.setup(config.log_level, config.log_format)
    return Runtime.from_config(config)


def cmd_migrate(_args: argparse.Namespace) -> int:
    runtime = _runtime()
    print(f"==> migrating {runtime.db.engine.url.render_as_string(hide_password=True)}")
    runtime.db.migrate()
    print("✓ schema is up to date")
    version = runtime.rules.bootstrap()
    print(f"✓ rule set version {version} is in force")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from router.api.app import create_app

    runtime = _runtime()
    if runtime.db.is_sqlite:
        runtime.db.migrate()
        runtime.rules.bootstrap()
    mode = "embedded (in-process broker + workers)" if runtime.embedded else "API only"
    print(f"==> Herald on http://{args.host}:{args.port}  [{mode}; "
          f"db {runtime.db.engine.url.render_as_string(hide_password=True)}]", flush=True)
    uvicorn.run(create_app(runtime), host=args.host, port=args.port,
                log_level="warning", ws_ping_interval=20)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    if args.processes > 1:
        return _spawn_workers(args)
    runtime = _runtime()
    if runtime.embedded:
        print("error: `herald worker` needs a broker: set HERALD_BROKER_URL=redis://... "
              "(embedded mode runs workers inside `herald serve`)", file=sys.stderr)
        return 2
    queues = [q.strip() for q in (args.queues or "").split(",") if q.strip()]
    runtime.follow_rules()
    sweeper = runtime.start_workers(threads=args.threads, queues=queues or None)
    print(f"==> worker pid {os.getpid()} running ({args.threads} threads"
          f"{'; queues ' + ', '.join(queues) if queues else ''})", flush=True)
    _wait_for_signal()
    sweeper.stop()
    runtime.close()
    return 0


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def _spawn_workers(args: argparse.Namespace) -> int:
    cmd = [sys.executable, "-m", "router.cli", "worker", "--threads", str(args.threads)]
    if args.queues:
        cmd += ["--queues", args.queues]
    procs = [subprocess.Popen(cmd) for _ in range(args.processes)]
    _wait_for_signal()
    for proc in procs:
        proc.terminate()
    return max(proc.wait() for proc in procs)


def cmd_tenants_create(args: argparse.Namespace) -> int:
    from router.directory import tenants

    runtime = _runtime()
    with runtime.db.session() as s:
        created = tenants.create(s, args.name, tenant_id=args.id, language=args.language,
                                 time_zone=args.time_zone)
    print(f"tenant:         {created.tenant_id}")
    print(f"API key:        {created.api_key}   (shown once; only its hash is stored)")
    print(f"signing secret: {created.signing_secret}   (signs user tokens, HS256)")
    return 0


def cmd_tenants_rotate(args: argparse.Namespace) -> int:
    from router.directory import tenants

    runtime = _runtime()
    with runtime.db.session() as s:
        secret = tenants.rotate_secret(s, args.tenant)
    grace = runtime.config.api.signing_grace_s
    print(f"new signing secret: {secret}\n(tokens signed with the previous secret stay valid "
          f"for {grace} s)")
    return 0


def cmd_tokens_user(args: argparse.Namespace) -> int:
    from router.directory import tenants

    runtime = _runtime()
    with runtime.db.session() as s:
        token = tenants.user_token(s, args.tenant, args.user_id, timedelta(hours=args.hours))
    print(token)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from router.routing.events import parse_event
    from router.routing.pipeline import publish

    runtime = _runtime()
    doc = json.loads(Path(args.event).read_text(encoding="utf-8"))
    tenant = args.tenant or doc.get("tenant")
    if not tenant:
        print("error: give --tenant or a 'tenant' field in the event", file=sys.stderr)
        return 2
    event = parse_event({**doc, "tenant": tenant}, runtime.engine.ruleset.events)
    with runtime.db.session() as s:
        [result] = publish(s, tenant, [event])
    if result.new:
        runtime.workers.enqueue_route([result.pk])
    print(json.dumps({"id": result.event_id, "status": result.status,
                      "duplicate": not result.new}))
    return 0


def cmd_deliveries_failed(args: argparse.Namespace) -> int:
    from router.cli import admin

    runtime = _runtime()
    with runtime.db.session() as s:
        report = admin.failed(s, args.tenant, args.limit)
    for line in report:
        print(line)
    if not report:
        print("no failed events or deliveries")
    return 0


def cmd_deliveries_retry(args: argparse.Namespace) -> int:
    from router.cli import admin

    runtime = _runtime()
    with runtime.db.session() as s:
        events, by_channel = admin.reset_failed(s, args.tenant)
    runtime.workers.enqueue_route(events)
    runtime.workers.enqueue_deliveries(by_channel)
    count = sum(len(v) for v in by_channel.values())
    print(f"re-driven: {len(events)} event(s), {count} deliver(y/ies)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from router.cli import demo

    if args.serve and not get_config().push.vapid_private_key:
        _demo_vapid_keys()
    runtime = _runtime()
    runtime.db.migrate()
    info = demo.load(runtime)
    print(demo.banner(info, runtime.config))
    if args.serve:
        args.host, args.port = args.host, args.port
        demo.start_catchers(runtime.config)
        return cmd_serve(args)
    return 0


def cmd_vapid_generate(args: argparse.Namespace) -> int:
    from channels.push import new_vapid_keys

    private, public = new_vapid_keys()
    if not args.write:
        print(f"HERALD_PUSH__VAPID_PRIVATE_KEY={private}")
        print(f"HERALD_PUSH__VAPID_PUBLIC_KEY={public}")
        return 0
    path = Path(args.write)
    _write_vapid_keys(path, {"vapid_private_key": private, "vapid_public_key": public},
                      args.force)
    print(f"✓ wrote push.vapid_private_key and push.vapid_public_key to {path}")
    print(f"  public key (the browsers' applicationServerKey): {public}")
    return 0


def _write_vapid_keys(path: Path, keys: dict[str, str], force: bool) -> None:
    """Set the keys in the push: section of a YAML config, keeping every other line."""
    from router.core.errors import ConfigError

    text = path.read_text(encoding="utf-8") if path.exists() else ""
    before = _yaml(text, path)
    push = before.get("push") or {}
    if not force and any(push.get(k) for k in keys):
        raise ConfigError(f"{path} already has VAPID keys; new keys invalidate every browser "
                          "push subscription made with the old public key (browsers must "
                          "subscribe again). Pass --force to replace them.")
    updated = _set_push_keys(text, keys)
    if _yaml(updated, path) != {**before, "push": {**push, **keys}}:
        lines = "\n".join(f"  {k}: {v}" for k, v in keys.items())
        raise ConfigError(f"could not update the push: section of {path}; add these lines "
                          f"under push: by hand:\n{lines}")
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(updated, encoding="utf-8")
    tmp.chmod(mode)
    os.replace(tmp, path)


def _yaml(text: str, path: Path) -> dict[str, Any]:
    import yaml

    from router.core.errors import ConfigError

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return data if isinstance(data, dict) else {}


def _set_push_keys(text: str, keys: dict[str, str]) -> str:
    """Replace or add ``key: "value"`` lines in the block under ``push:``."""
    import re

    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines)
                  if re.match(r"push:\s*(#.*)?$", line.rstrip("\r\n"))), None)
    if start is None:
        gap = "" if not text or text.endswith("\n") else "\n"
        return text + gap + "push:\n" + "".join(f'  {k}: "{v}"\n' for k, v in keys.items())
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t#"):
        end += 1
    block = lines[start + 1:end]
    indent = next((line[:len(line) - len(line.lstrip())] for line in block
                   if line.strip() and not line.lstrip().startswith("#")), "  ")
    for n, (key, value) in enumerate(keys.items()):
        pattern = re.compile(rf"(\s+){key}:[^#\n]*?(\s+#.*)?$")
        hit = next((i for i, line in enumerate(block) if pattern.match(line.rstrip("\r\n"))),
                   None)
        if hit is None:
            block.insert(n, f'{indent}{key}: "{value}"\n')
            continue
        found = pattern.match(block[hit].rstrip("\r\n"))
        assert found is not None
        block[hit] = f'{found.group(1)}{key}: "{value}"{found.group(2) or ""}\n'
    return "".join(lines[:start + 1] + block + lines[end:])


def _demo_vapid_keys() -> None:
    """The demo gets throw-away VAPID keys for this process, so the inbox's push switch
    works; `herald vapid generate --write config.yaml` makes lasting ones."""
    from channels.push import new_vapid_keys

    private, public = new_vapid_keys()
    os.environ["HERALD_PUSH__VAPID_PRIVATE_KEY"] = private
    os.environ["HERALD_PUSH__VAPID_PUBLIC_KEY"] = public
    get_config.cache_clear()
    print("note: push uses throw-away VAPID keys for this demo process "
          "(`herald vapid generate --write config.yaml` for lasting ones)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="run the HTTP API (embedded: with workers)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("worker", help="run delivery workers (needs HERALD_BROKER_URL)")
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--queues", default="",
                   help="comma-separated queues to consume (default: all), e.g. herald.route "
                   "(its bulk lane herald.route.bulk comes with it)")
    p.set_defaults(func=cmd_worker)
    sub.add_parser("migrate", help="create or upgrade the schema").set_defaults(func=cmd_migrate)
    p = sub.add_parser("publish", help="publish an event from a JSON file")
    p.add_argument("event")
    p.add_argument("--tenant")
    p.set_defaults(func=cmd_publish)
    p = sub.add_parser("demo", help="load the demo tenant and print its key and URLs")
    p.add_argument("--serve", action="store_true", help="then serve, with a local mail catcher")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_demo)
    tenants = sub.add_parser("tenants", help="manage tenants").add_subparsers(
        dest="tenants_command", required=True)
    p = tenants.add_parser("create", help="create a tenant; prints its API key once")
    p.add_argument("name")
    p.add_argument("--id")
    p.add_argument("--language", default="en")
    p.add_argument("--time-zone", help="IANA name for users who set none (default: UTC)")
    p.set_defaults(func=cmd_tenants_create)
    p = tenants.add_parser("rotate-secret", help="rotate the tenant's signing secret")
    p.add_argument("tenant")
    p.set_defaults(func=cmd_tenants_rotate)
    tokens = sub.add_parser("tokens", help="mint tokens for development").add_subparsers(
        dest="tokens_command", required=True)
    p = tokens.add_parser("user", help="a user token (JWT) for the receiver-side API")
    p.add_argument("user_id")
    p.add_argument("--tenant", default="demo")
    p.add_argument("--hours", type=float, default=24)
    p.set_defaults(func=cmd_tokens_user)
    dl = sub.add_parser("deliveries", help="inspect and re-drive failures").add_subparsers(
        dest="deliveries_command", required=True)
    p = dl.add_parser("failed", help="list failed events and deliveries")
    p.add_argument("--tenant")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_deliveries_failed)
    p = dl.add_parser("retry", help="re-drive failed events and deliveries")
    p.add_argument("--tenant")
    p.set_defaults(func=cmd_deliveries_retry)
    vapid = sub.add_parser("vapid", help="web push (VAPID) keys").add_subparsers(
        dest="vapid_command", required=True)
    p = vapid.add_parser("generate", help="a new VAPID key pair, as env lines or into a config")
    p.add_argument("--write", metavar="PATH", help="set the keys in the push: section of PATH")
    p.add_argument("--force", action="store_true", help="replace keys PATH already has")
    p.set_defaults(func=cmd_vapid_generate)
