"""Opening the results database safely, and bringing its schema up to date.

The database is SQLite (stdlib) in WAL mode. Only a perflab database is ever written: a
path that is not a regular file (a FIFO would hang open(), a device would be written
through), a file that is not SQLite, a SQLite file carrying another application's id or
tables of its own, and a file from a newer perflab are all refused with one line, and
left as they were. Read-only opens (show, history) create nothing: no database, and no
-wal or -shm beside a database that has no pending write-ahead log (sqlite.org/uri.html,
"immutable").
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from perflab.core.errors import EnvironmentRefused
from perflab.results.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

SQLITE_HEADER = b"SQLite format 3\x00"  # sqlite.org/fileformat2.html, "The Database Header"


def refuse(path: Path | str, why: str) -> EnvironmentRefused:
    return EnvironmentRefused(f"cannot use database {path}: {why}")


def check_path(path: Path) -> bool:
    """True if a database file is there; refuse anything that is not a regular file or
    not SQLite (read from its header, without opening it as a database)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise refuse(path, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise refuse(path, "it is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise refuse(path, "it is not a regular file (a FIFO, device or socket)")
    if st.st_size:
        try:
            with open(path, "rb") as f:
                head = f.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise refuse(path, exc.strerror or str(exc)) from None
        if head != SQLITE_HEADER:
            raise EnvironmentRefused(f"{path} is not a perflab database (not an SQLite file)")
    return True


def user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def check_ours(conn: sqlite3.Connection, path: Path | str) -> int:
    """The schema version of a perflab database; refuse another application's file."""
    app = conn.execute("PRAGMA application_id").fetchone()[0]
    version = user_version(conn)
    if app not in (0, APPLICATION_ID):
        raise EnvironmentRefused(f"{path} is not a perflab database (SQLite application id {app:#x})")
    if version == 0:
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if tables:
            raise EnvironmentRefused(f"{path} is not a perflab database (an SQLite file with tables of its own)")
    if version > SCHEMA_VERSION:
        raise EnvironmentRefused(
            f"{path} has schema version {version}, newer than this perflab's {SCHEMA_VERSION}: "
            "upgrade perflab, or use another database with --db")
    return version


def migrate(conn: sqlite3.Connection, path: Path | str = "database") -> int:
    """Bring the schema up to date, one transaction per migration."""
    version = check_ours(conn, path)
    for number in range(version, SCHEMA_VERSION):
        steps = MIGRATIONS[number]
        conn.execute("BEGIN")
        try:
            for step in steps if isinstance(steps, tuple) else (steps,):
                if callable(step):
                    step(conn)
                else:
                    for statement in (s for s in step.split(";") if s.strip()):
                        conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION


def open_writable(path: Path) -> sqlite3.Connection:
    check_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise refuse(path, exc.strerror or str(exc)) from None
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise refuse(path, str(exc)) from None
    try:
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn, path)
        # WAL only once the file is known to be ours: a foreign file keeps its journal mode
        conn.execute("PRAGMA journal_mode=WAL")
        return conn
    except sqlite3.Error as exc:
        conn.close()
        raise refuse(path, str(exc)) from None
    except BaseException:
        conn.close()
        raise


def _uri(path: Path, query: str) -> str:
    return f"{path.resolve().as_uri()}?{query}"  # sqlite.org/uri.html


def open_readonly(path: Path) -> sqlite3.Connection:
    """A connection that writes nothing. With no pending -wal the file is complete and
    is read as immutable (no -shm is made); with one, mode=ro reads through it, which needs
    the -shm index beside it (sqlite.org/wal.html, "Read-Only Databases")."""
    if not check_path(path):
        raise EnvironmentRefused(f"no database at {path}: nothing stored there yet ('perflab run' creates it)")
    wal = Path(f"{path}-wal")
    pending = wal.exists() and wal.stat().st_size > 0
    conn = None
    try:
        if not pending:
            conn = sqlite3.connect(_uri(path, "mode=ro&immutable=1"), uri=True, isolation_level=None)
            version = check_ours(conn, path)
        else:
            try:
                conn = sqlite3.connect(_uri(path, "mode=ro"), uri=True, isolation_level=None)
                version = check_ours(conn, path)
            except sqlite3.OperationalError as exc:
                raise EnvironmentRefused(
                    f"cannot read database {path} ({exc}): its -wal holds changes not yet in the file, "
                    "which this user cannot read without writing beside it (open it once as its owner)") from None
        if version == 0:
            raise EnvironmentRefused(f"{path} is not a perflab database (it has no perflab schema)")
        if version < SCHEMA_VERSION:
            conn.close()
            conn = None
            try:  # an older perflab database is brought up to date, as a run would do
                return open_writable(path)
            except EnvironmentRefused as exc:
                raise EnvironmentRefused(f"{path} has schema version {version} and must be migrated to "
                                         f"{SCHEMA_VERSION}, but cannot be written: {exc}") from None
        return conn
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        raise refuse(path, str(exc)) from None
    except BaseException:
        if conn is not None:
            conn.close()
        raise
