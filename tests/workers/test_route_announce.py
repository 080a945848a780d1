"""A route batch and the browser channel's announce step (``workers.actors.route_events``)
against a Redis that accepts connections and never answers: the route commits and lets go
of its events' row locks before anybody asks Redis who is online."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text

from router.core.config import load_config
from router.core.enums import Channel, DeliveryStatus
from router.routing.pipeline import publish
from router.runtime import Runtime
from router.store import models as m
from tests import factories as f
from tests.conftest import PG_URL, RULES
from workers.actors import route_events


class SilentRedis:
    """A TCP server that accepts connections and reads them, never answering; ``asked`` is
    set when the first command arrives. Closing it breaks every connection at once."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        self.asked = threading.Event()
        self.conns: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.closed:
                conn.close()
                return
            self.conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                self.asked.set()
        except OSError:
            pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept
        self.listener.close()
        for conn in self.conns:
            conn.shutdown(socket.SHUT_RDWR)
            conn.close()


@pytest.fixture
def silent() -> Iterator[SilentRedis]:
    server = SilentRedis()
    yield server
    server.close()


def test_a_route_batch_holds_no_event_lock_while_presence_is_asked(pg, silent):
    runtime = Runtime(load_config(database_url=PG_URL, broker_url="", redis_url=silent.url,
                                  rules_path=RULES, smtp={"port": 1}))
    with pg.session() as s:
        tenant = f.new_tenant(s).id
        f.employee(s, tenant, "ada", roles=["admin"])
        [stored] = publish(s, tenant, [f.event("code.paired", tenant)])
    routing = threading.Thread(target=route_events, args=(runtime, [stored.pk]))
    routing.start()
    try:
        assert silent.asked.wait(30), "nobody asked Redis who is online"
        with pg.session() as s:  # the presence call hangs now: the event is routed and free
            status = s.execute(text("SELECT status FROM events WHERE pk = :pk FOR UPDATE NOWAIT"),
                               {"pk": stored.pk}).scalar_one()
        assert status == "routed"
    finally:
        silent.close()  # presence cannot be told: ada counts as online; the publish fails
        routing.join(30)
        runtime.close()
    with pg.session() as s:
        browser = s.execute(select(m.Delivery.receiver_id, m.Delivery.status).where(
            m.Delivery.event_pk == stored.pk, m.Delivery.channel == Channel.BROWSER)).all()
    assert browser == [("ada", DeliveryStatus.PENDING)]  # queued for the adapter path's retries
