"""Database engine, sessions and migrations."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Engine,
    Executable,
    Result,
    and_,
    bindparam,
    create_engine,
    event,
    func,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

MIGRATIONS = Path(__file__).parent / "migrations"


class Database:
    """One SQLAlchemy engine plus a session factory; the only way code reaches SQL."""

    def __init__(self, url: str, **engine_args: Any) -> None:
        self.url = url
        self.engine = _make_engine(url, **engine_args)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def migrate(self) -> None:
        migrate(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def _make_engine(url: str, **engine_args: Any) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            engine_args.setdefault("poolclass", StaticPool)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               **engine_args)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine_args.setdefault("pool_pre_ping", True)
    engine_args.setdefault("pool_size", 10)
    engine_args.setdefault("max_overflow", 20)
    engine = create_engine(url, **engine_args)
    event.listen(engine, "connect", _pg_session)
    return engine


def _pg_session(conn: Any, _record: Any) -> None:
    # a generic plan cannot see how many ids an array parameter holds (docs/decisions.md,
    # "Id lookups and stale statistics"): plan every execution with its values
    with conn.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    conn.commit()


def _sqlite_pragmas(conn: Any, _record: Any) -> None:
    cursor = conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def next_seq(session: Session, count: int) -> list[int]:
    """Allocate `count` increasing feed sequence numbers (for stream replay)."""
    if count == 0:
        return []
    if dialect_of(session) == "postgresql":
        seqs: list[int] = session.scalar(  # one array: no row per number to fetch
            text("SELECT array_agg(nextval('feed_seq')) FROM generate_series(1, :n)"), {"n": count})
        return sorted(seqs)
    top = session.execute(text("SELECT coalesce(max(seq), 0) FROM feed_items")).scalar_one()
    return list(range(top + 1, top + 1 + count))


def one_of(s: Session, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """``column IN values`` for large id lists: on PostgreSQL one array parameter,
    ``column = ANY(:a)`` (adapted in C, not thousands of placeholders parsed in Python),
    planned with its values (``_pg_session``). Why not ``unnest``: docs/decisions.md,
    "Id lookups and stale statistics"."""
    return _one_of(dialect_of(s), column, "", values)


def one_of_param(dialect: str, column: Any, name: str) -> ColumnElement[bool]:
    """``one_of`` with a named parameter, for a statement built once and run with each
    call's list as ``name`` (SQLAlchemy then skips building, keying and adapting it)."""
    return _one_of(dialect, column, name, None)


def pair_of(s: Session, first: Any, second: Any,
            pairs: Collection[tuple[Any, Any]]) -> ColumnElement[bool]:
    """``(first, second) IN pairs``. On PostgreSQL each column is first narrowed by its
    own array (``one_of``: index conditions or hashed filters, planned right whatever
    the statistics), then the exact pairs are checked by a semi-join on two unnested
    arrays over the few rows left. A semi-join alone was planned as a nested loop over
    every unread feed item of the tenant when the statistics were stale (0.2-0.3 s per
    stacking lookup, growing with the feed)."""
    return _pair_of(dialect_of(s), first, second, "", pairs)


def pair_of_param(dialect: str, first: Any, second: Any, name: str) -> ColumnElement[bool]:
    """``pair_of`` with named parameters, for a statement built once; ``pair_params``
    gives a call's values for them."""
    return _pair_of(dialect, first, second, name, None)


def pair_params(dialect: str, name: str, pairs: Collection[tuple[Any, Any]]) -> dict[str, Any]:
    """The values of ``pair_of_param(dialect, ..., name)`` for these pairs."""
    if dialect == "postgresql":
        return {f"{name}_a": [p[0] for p in pairs], f"{name}_b": [p[1] for p in pairs],
                f"{name}_first": list({p[0] for p in pairs}),
                f"{name}_second": list({p[1] for p in pairs})}
    return {name: [tuple(p) for p in pairs]}


def _bind(name: str, values: list[Any] | None, **kw: Any) -> BindParameter[Any]:
    """This call's values as an anonymous parameter, or, without values, the named
    parameter of a statement built once."""
    return bindparam(name, **kw) if values is None else bindparam(None, values, **kw)


def _one_of(dialect: str, column: Any, name: str, values: Collection[Any] | None
            ) -> ColumnElement[bool]:
    given = None if values is None else list(values)
    if dialect == "postgresql":
        found: ColumnElement[bool] = column == func.any(
            _bind(name, given, type_=ARRAY(column.type)))
        return found
    return cast(ColumnElement[bool], column.in_(_bind(name, given, expanding=True)))


def _pair_of(dialect: str, first: Any, second: Any, name: str,
             pairs: Collection[tuple[Any, Any]] | None) -> ColumnElement[bool]:
    given = None if pairs is None else pair_params(dialect, name, pairs)
    if dialect == "postgresql":
        def values(part: str) -> list[Any] | None:
            return None if given is None else given[f"{name}_{part}"]

        a = _bind(f"{name}_a", values("a"), type_=ARRAY(first.type))
        b = _bind(f"{name}_b", values("b"), type_=ARRAY(second.type))
        return and_(_one_of(dialect, first, f"{name}_first", values("first")),
                    _one_of(dialect, second, f"{name}_second", values("second")),
                    tuple_(first, second).in_(select(func.unnest(a), func.unnest(b))))
    return tuple_(first, second).in_(_bind(name, None if given is None else given[name],
                                           expanding=True))


def core_read(s: Session, statement: Executable, params: dict[str, Any]
              ) -> Result[*tuple[Any, ...]]:
    """A prebuilt statement on the session's Core connection (pending ORM changes flushed
    first, as ``Session.execute`` would): no ORM execution path, and a statement built
    once is keyed once (docs/decisions.md, "Feed reads run prebuilt statements")."""
    s.flush()
    return s.connection().execute(statement, params)


def dialect_of(s: Session) -> str:
    return s.get_bind().dialect.name
