"""A tiny local SMTP catcher for the demo: every mail lands in a folder as .eml."""

from __future__ import annotations

import email
import email.policy
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class _Saver:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}.eml"
        (self.folder / name).write_bytes(envelope.original_content or envelope.content)
        return "250 OK saved"


def start(host: str, port: int, folder: Path) -> Controller | None:
    controller = Controller(_Saver(folder), hostname=host, port=port)
    try:
        controller.start()
    except (OSError, RuntimeError) as exc:
        print(f"note: mail catcher not started on {host}:{port} ({exc}); "
              "is another one running?")
        return None
    print(f"==> mail catcher on {host}:{port}, saving to ./{folder}/")
    return controller


def listing(folder: Path, limit: int = 50) -> list[dict[str, str]]:
    files = sorted(folder.glob("*.eml"), reverse=True)[:limit] if folder.exists() else []
    out = []
    for file in files:
        msg = email.message_from_bytes(file.read_bytes(), policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        out.append({"file": file.name, "to": str(msg["To"]), "subject": str(msg["Subject"]),
                    "date": str(msg["Date"]), "text": body.get_content() if body else ""})
    return out
