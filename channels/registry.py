"""Channel name -> adapter class. Explicit, no module scanning."""

from __future__ import annotations

from typing import TYPE_CHECKING

from channels.base import Adapter
from channels.browser import BrowserAdapter
from channels.email import EmailAdapter
from channels.push import PushAdapter
from router.enums import Channel

if TYPE_CHECKING:
    from router.runtime import Runtime

ADAPTERS: dict[Channel, type[Adapter]] = {
    Channel.BROWSER: BrowserAdapter,
    Channel.EMAIL: EmailAdapter,
    Channel.PUSH: PushAdapter,
}


def adapter_for(runtime: Runtime, channel: Channel) -> Adapter:
    """The runtime's adapter instance for a channel (one per runtime and channel)."""
    cache: dict[Channel, Adapter] = runtime.__dict__.setdefault("_adapters", {})
    if channel not in cache:
        cache[channel] = ADAPTERS[channel](runtime)
    return cache[channel]
