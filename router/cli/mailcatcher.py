"""A tiny local SMTP catcher for the demo: every mail lands in a folder as .eml
(listed by ``router.api.demo`` at /demo/mailbox)."""

from __future__ import annotations

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
