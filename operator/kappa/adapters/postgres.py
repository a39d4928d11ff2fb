"""The PostgreSQL serving backend of a MaterializedView: a view over one table per version, switched in one
transaction with a compare-and-swap precondition. psycopg 3's async connections keep the event loop free.

The connection URI comes from a Secret and is never logged or stored: errors name the view, or the server by
host and port only (PostgresUnavailable), never the user or password.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from kappa.adapters.alias import AliasError, AliasMoved, BackendUnavailable, Cutover
from kappa.adapters.retry import retrying


class PostgresUnavailable(BackendUnavailable):
    """The serving database did not take the connection (down, unresolvable, timed out, or refusing the
    login), or dropped it mid-session (shut down, crashed, connection lost). The message names host and port
    and says why, in libpq's words, with the password (if ever quoted) masked."""


# SQLSTATEs of a server going away under an open session: admin, crash and starting/stopping shutdowns.
_SHUTDOWN = frozenset({"57P01", "57P02", "57P03"})


def _locked(exc: BaseException) -> bool:
    """The view stayed locked (by a reader's long query, say) past the try's lock_timeout."""
    return isinstance(exc, psycopg.errors.LockNotAvailable)


def lost(exc: psycopg.Error) -> bool:
    """The connection broke (no SQLSTATE: refused, timed out, closed), or the server is shutting down, as
    opposed to an error of the statement itself (a lock timeout, a bad query) on a working connection."""
    state = exc.sqlstate
    return isinstance(exc, psycopg.OperationalError) and (
        state is None or state.startswith("08") or state in _SHUTDOWN
    )


def server_of(uri: str) -> str:
    """host:port of a connection string (URI or key=value), without user or password; "" if unparseable."""
    try:
        params = conninfo_to_dict(uri)
    except psycopg.ProgrammingError:
        return ""
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    return f"{host}:{params.get('port') or 5432}"


def unavailable(uri: str, exc: BaseException) -> PostgresUnavailable:
    """The error for a failed connect: "PostgreSQL at host:port unreachable: <libpq's reason>"."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    try:
        password = str(conninfo_to_dict(uri).get("password") or "")
    except psycopg.ProgrammingError:
        password = ""
    if password:
        reason = reason.replace(password, "****")
    server = server_of(uri) or "the serving database"
    return PostgresUnavailable(f"PostgreSQL at {server} unreachable: {reason}")


class PostgresAlias:
    def __init__(self, uri: str, *, connect_timeout: float = 10.0) -> None:
        self._uri = uri
        self._connect_timeout = connect_timeout

    async def _connect(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        try:
            return await psycopg.AsyncConnection.connect(
                self._uri, connect_timeout=int(self._connect_timeout)
            )
        except psycopg.OperationalError as exc:
            raise unavailable(self._uri, exc) from None

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[psycopg.AsyncConnection[tuple[object, ...]]]:
        """A connection, closed after use; an outage at any point of the session is PostgresUnavailable."""
        conn = await self._connect()
        try:
            async with conn:
                yield conn
        except psycopg.Error as exc:
            if lost(exc):
                raise unavailable(self._uri, exc) from None
            raise

    @staticmethod
    async def _target(
        conn: psycopg.AsyncConnection[tuple[object, ...]], schema: str, view: str
    ) -> str | None:
        cur = await conn.execute(
            "SELECT table_name FROM information_schema.view_table_usage "
            "WHERE view_schema = %s AND view_name = %s ORDER BY table_name",
            (schema, view),
        )
        rows = await cur.fetchall()
        if len(rows) > 1:
            raise AliasError(f"view {schema}.{view} reads {len(rows)} tables; an alias reads exactly one")
        return str(rows[0][0]) if rows else None

    async def target(self, schema: str, view: str) -> str | None:
        """The table the view reads now; None when there is no such view."""
        async with self._session() as conn:
            return await self._target(conn, schema, view)

    async def cutover(
        self,
        schema: str,
        view: str,
        to_table: str,
        *,
        expected: str | None,
        lock_timeout: str = "2s",
        retries: int = 5,
    ) -> Cutover:
        """Point `schema.view` at `to_table` if it still points at `expected` (None: the view must not exist).

        One transaction: lock the view, check, replace. Readers see the old or the new table, never neither.
        Idempotent: a view that already points at `to_table` is reported as done. A lock timeout is retried.
        """
        started = time.perf_counter()
        try:
            async for attempt in retrying(_locked, tries=retries + 1):
                with attempt:
                    return await self._switch(
                        schema,
                        view,
                        to_table,
                        expected,
                        lock_timeout,
                        started,
                        attempt.retry_state.attempt_number,
                    )
        except psycopg.errors.LockNotAvailable:
            raise AliasError(
                f"view {schema}.{view} stayed locked for {retries + 1} tries of {lock_timeout}"
            ) from None
        raise AssertionError("unreachable")

    async def _switch(
        self,
        schema: str,
        view: str,
        to_table: str,
        expected: str | None,
        lock_timeout: str,
        started: float,
        attempt: int,
    ) -> Cutover:
        """One try of `cutover`: lock the view, check, replace, in one transaction."""
        async with self._session() as conn, conn.transaction():
            await conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(lock_timeout)))
            current = await self._target(conn, schema, view)
            if current is not None:
                await conn.execute(
                    sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(schema, view))
                )
                current = await self._target(conn, schema, view)  # again, under the lock
            if current == to_table:
                return Cutover(view, current, to_table, _ms(started), attempt, already_done=True)
            if current != expected:
                raise AliasMoved(
                    f"view {schema}.{view} reads {current or 'nothing'}, not {expected or 'nothing'} "
                    "as expected: someone repointed it; refusing to overwrite"
                )
            await self._replace(conn, schema, view, to_table, exists=current is not None)
        return Cutover(view, current, to_table, _ms(started), attempt)

    # -- the versions' tables ---------------------------------------------------------------------------

    async def table_exists(self, schema: str, table: str) -> bool:
        async with self._session() as conn:
            return await self._exists(conn, schema, table)

    async def create_like(self, schema: str, table: str, like: str) -> bool:
        """Create `table` with the columns, keys and defaults of `like`, empty; False if it existed."""
        async with self._session() as conn:
            if await self._exists(conn, schema, table):
                return False
            await conn.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} (LIKE {} INCLUDING ALL)").format(
                    sql.Identifier(schema, table), sql.Identifier(schema, like)
                )
            )
            await conn.commit()
            return True

    async def drop_table(self, schema: str, view: str, table: str) -> bool:
        """Drop a version's table, never the one the view reads; False if it was not there."""
        async with self._session() as conn, conn.transaction():
            if await self._target(conn, schema, view) == table:
                raise AliasError(f"refusing to drop {schema}.{table}: view {schema}.{view} reads it")
            if not await self._exists(conn, schema, table):
                return False
            await conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, table)))
            return True

    async def count(self, schema: str, table: str) -> int | None:
        """Rows in a version's table; None when there is no such table."""
        async with self._session() as conn:
            if not await self._exists(conn, schema, table):
                return None
            cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table)))
            row = await cur.fetchone()
            return int(row[0]) if row else 0  # type: ignore[call-overload]

    async def key_diff(
        self, schema: str, active: str, new: str, *, sample: int, ignore: list[str]
    ) -> tuple[int, int, list[str]]:
        """Sample keys of the active table and compare whole rows, minus `ignore`d columns, with the new
        table's rows of the same keys. Returns (sampled, differing, up to 5 differing keys)."""
        async with self._session() as conn:
            columns = await self._primary_key(conn, schema, active)
            if not columns:
                raise AliasError(f"{schema}.{active} has no primary key to sample by")
            # A composite key compares as its columns' text joined by the unit separator.
            key = sql.SQL("concat_ws(chr(31), {})").format(
                sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns)
            )
            strip = sql.SQL("").join(sql.SQL(" - {}").format(sql.Literal(c)) for c in ignore)
            query = sql.SQL(
                "SELECT a.k, (a.j{strip}) IS DISTINCT FROM (b.j{strip}) FROM "
                "(SELECT {key} AS k, to_jsonb(t) AS j FROM {active} t ORDER BY random() LIMIT {n}) a "
                "LEFT JOIN (SELECT {key} AS k, to_jsonb(t) AS j FROM {new} t) b ON a.k = b.k"
            ).format(
                strip=strip,
                key=key,
                active=sql.Identifier(schema, active),
                new=sql.Identifier(schema, new),
                n=sql.Literal(sample),
            )
            rows = await (await conn.execute(query)).fetchall()
            differing = [str(r[0]) for r in rows if r[1]]
            return len(rows), len(differing), differing[:5]

    async def check(self, schema: str, table: str, query: str, *, timeout: float = 60.0) -> tuple[bool, str]:
        """Run a user's SQL check with `{table}` naming the new table; it must return one boolean."""
        statement = query.replace("{table}", sql.Identifier(schema, table).as_string(None))
        async with self._session() as conn:
            # Read-only, and bounded: a check must neither change data nor hold up the reconcile.
            await conn.execute("SET TRANSACTION READ ONLY")
            await conn.execute(
                sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(f"{int(timeout * 1000)}ms"))
            )
            try:
                rows = await (await conn.execute(statement.encode())).fetchall()
            except psycopg.Error as exc:
                if lost(exc):
                    raise  # an outage, not a failed check
                return False, f"query failed: {str(exc).strip()[:300]}"
        if len(rows) != 1 or len(rows[0]) != 1 or not isinstance(rows[0][0], bool):
            return False, f"expected one row with one boolean, got {rows[:2]!r}"[:300]
        return bool(rows[0][0]), "returned " + str(rows[0][0]).lower()

    @staticmethod
    async def _exists(conn: psycopg.AsyncConnection[tuple[object, ...]], schema: str, table: str) -> bool:
        cur = await conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (schema, table),
        )
        return await cur.fetchone() is not None

    @staticmethod
    async def _primary_key(
        conn: psycopg.AsyncConnection[tuple[object, ...]], schema: str, table: str
    ) -> list[str]:
        """The primary key's columns, in key order; empty when there is none."""
        cur = await conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = %s::regclass AND i.indisprimary "
            "ORDER BY array_position(i.indkey::int2[], a.attnum)",
            (sql.Identifier(schema, table).as_string(None),),
        )
        return [str(r[0]) for r in await cur.fetchall()]

    @staticmethod
    async def _replace(
        conn: psycopg.AsyncConnection[tuple[object, ...]], schema: str, view: str, table: str, *, exists: bool
    ) -> None:
        select = sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, table))
        name = sql.Identifier(schema, view)
        try:
            async with conn.transaction():  # a savepoint: CREATE OR REPLACE fails when the columns differ
                await conn.execute(sql.SQL("CREATE OR REPLACE VIEW {} AS {}").format(name, select))
        except psycopg.errors.InvalidTableDefinition:
            if not exists:
                raise
            # Columns were dropped, renamed or retyped: drop and create, still inside the one transaction.
            await conn.execute(sql.SQL("DROP VIEW {}").format(name))
            await conn.execute(sql.SQL("CREATE VIEW {} AS {}").format(name, select))


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
