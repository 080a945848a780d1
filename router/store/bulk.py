"""Bulk inserts of Herald's high-volume rows (feed items, deliveries, their history).

On PostgreSQL the rows go in with COPY inside the session's transaction, and their
ids are taken from the table's sequence beforehand, so the caller knows each row's
id without RETURNING. This replaced SQLAlchemy's multi-row INSERT ... RETURNING:
for batches of thousands of rows psycopg re-parsed each multi-kilobyte statement
in Python (``_query2pg_nocache``), which was a third of a route worker's CPU.
Elsewhere (SQLite, the embedded default) it is a plain executemany insert.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

from sqlalchemy import JSON, Table, insert, text
from sqlalchemy.orm import Session


def insert_rows(s: Session, table: Table, rows: Sequence[dict[str, Any]],
                with_ids: bool = True, reserved: Sequence[int] | None = None) -> list[int]:
    """Insert rows (dicts with the same keys, every column they need given) and return
    their new ids in the order of `rows` (an empty list when `with_ids` is false).
    PostgreSQL: `reserved`, ids taken from the table's sequence beforehand (`ids_and_seqs`),
    at least one per row."""
    if not rows:
        return []
    if s.get_bind().dialect.name != "postgresql":
        if not with_ids:
            s.execute(insert(table), list(rows))
            return []
        found = s.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                          list(rows)).all()
        return [r[0] for r in found]
    if not with_ids:
        ids: list[int] = []
    elif reserved is not None:
        ids = list(reserved[:len(rows)])
    else:
        ids = _next_ids(s, table, len(rows))
    names = list(rows[0])
    convert = [_converter(table, n, rows[0][n]) for n in names]
    columns = (["id"] if with_ids else []) + names
    driver = s.connection().connection.driver_connection
    assert driver is not None
    with driver.cursor() as cur, cur.copy(
            f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for i, row in enumerate(rows):
            values = [row[n] if c is None else c(row[n]) for n, c in zip(names, convert, strict=True)]
            copy.write_row([ids[i], *values] if with_ids else values)
    return ids


def _converter(table: Table, name: str, first: Any) -> Callable[[Any], Any] | None:
    """How a column's values are written, decided once per call from the first row (the
    row builders put one type in a column): JSON text, an enum's value (psycopg would
    dump an Enum member by its name), or as they are (None)."""
    if isinstance(table.c[name].type, JSON):
        return _json_memo()
    if isinstance(first, Enum):
        return _plain
    return None


def _json_memo() -> Callable[[Any], str]:
    """json.dumps that encodes an object shared by many rows (one content dict for a
    whole fan-out, the empty chain) once; the rows keep the objects alive meanwhile."""
    seen: dict[int, str] = {}

    def dumps(value: Any) -> str:
        key = id(value)
        if key not in seen:
            seen[key] = json.dumps(value)
        return seen[key]

    return dumps


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def ids_and_seqs(s: Session, table: Table, n: int, sequence: str) -> tuple[list[int], list[int]]:
    """PostgreSQL: `n` ids of the table and `n` numbers of another sequence (the feed's
    replay order), in one round trip instead of two; each list increasing."""
    ids, seqs = s.execute(text(_RESERVE.format(", array_agg(nextval(CAST(:s AS regclass)))")),
                          {"t": table.name, "s": sequence, "n": n}).one()
    return sorted(ids), sorted(seqs)


# `n` ids from the table's sequence, in one array (and maybe more columns). The sequence
# is looked up once (a materialised CTE): joined in plainly, PostgreSQL cast its name to a
# regclass for every row, 13 us each, ten times the nextval.
_RESERVE = ("WITH q AS MATERIALIZED (SELECT pg_get_serial_sequence(:t, 'id')::regclass AS seq) "
            "SELECT array_agg(nextval(q.seq)){} FROM q, generate_series(1, :n)")


def _next_ids(s: Session, table: Table, n: int) -> list[int]:
    ids: list[int] = s.scalar(text(_RESERVE.format("")), {"t": table.name, "n": n})
    return sorted(ids)
