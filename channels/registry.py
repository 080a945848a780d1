"""Channel name -> adapter class. Explicit, no module scanning."""

from __future__ import annotations

from channels.browser import BrowserAdapter
from channels.email import EmailAdapter
from channels.push import PushAdapter
from router.core.enums import Channel
from router.delivery.contracts import Adapter

ADAPTERS: dict[Channel, type[Adapter]] = {
    Channel.BROWSER: BrowserAdapter,
    Channel.EMAIL: EmailAdapter,
    Channel.PUSH: PushAdapter,
}
