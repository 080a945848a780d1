"""Delivery rows made directly in the shared PostgreSQL, one tenant per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from router.core.enums import Channel, DeliveryStatus, Strategy
from router.store import models as m
from tests import factories as f


@pytest.fixture
def planned(pg) -> Iterator[Callable[..., int]]:
    """planned(channel, strategy=..., chain=[...], **columns) -> the id of a pending delivery."""
    with pg.session() as s:
        tenant = f.new_tenant(s).id
        event = m.EventRow(tenant_id=tenant, event_id=uuid.uuid4().hex, type="ticket.created",
                           payload={"type": "ticket.created", "id": "e",
                                    "subject": {"kind": "ticket", "id": "T-1", "number": "#1"}})
        s.add(event)
        s.flush()
        event_pk = event.pk

    yield make_row(pg, tenant, event_pk)
    with pg.session() as s:
        f.settle(s, tenant)


def make_row(pg, tenant: str, event_pk: int) -> Callable[..., int]:
    def make(channel: Channel = Channel.EMAIL, strategy: Strategy = Strategy.ALL,
             chain: list[str] | None = None, **columns: Any) -> int:
        with pg.session() as s:
            row = m.Delivery(tenant_id=tenant, event_pk=event_pk, receiver_kind="employee",
                             receiver_id="ann", channel=channel, status=DeliveryStatus.PENDING,
                             strategy=strategy, chain=chain or [],
                             content=columns.pop("content", {
                                 "language": "en", "title": "T", "message": "M"}), **columns)
            s.add(row)
            s.flush()
            return row.id

    return make


@pytest.fixture
def row(pg) -> Callable[[int], m.Delivery]:
    def read(delivery_id: int) -> m.Delivery:
        with pg.session() as s:
            found = s.get(m.Delivery, delivery_id)
            assert found is not None
            s.expunge(found)
            return found

    return read
