"""The embedded warehouse in a process of its own: the runner's DuckDB file, served to the runner.

Why: DuckDB's Python client takes the GIL between every task of every query (to check for Ctrl-C), and
in the runner's process eight fetch workers hold it in turn. The loader waited for the GIL more than it
merged (docs/benchmarks.md, "the interpreter the loader waits for"). In its own process DuckDB has an
interpreter to itself, and the runner's threads wait on a socket instead, without the GIL.

`WarehouseProcess` is the Warehouse port (an SqlWarehouse) whose calls run in a child process that owns
a `DuckDBWarehouse`: the port's methods and the SQL base's `query`/`execute`/`transaction` (the
dead-letter store's) are sent whole, one at a time, over a socket pair, and their result or their
exception (the taxonomy's, pickled) comes back. A transaction is still one DuckDB transaction in one
process, so nothing about crash safety changes: a kill of the runner kills the child too (Linux
PR_SET_PDEATHSIG), and DuckDB's WAL keeps a transaction all or nothing either way.

The child imports DuckDB; the runner's process does not (37 MB of resident memory it no longer needs).

    python -m shared.adapters.local.warehouse_process FD PATH [--must-exist]   (the child; started here)
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from shared.adapters.sql import statements as st
from shared.adapters.sql.dialect import DUCKDB, Sql
from shared.adapters.sql.warehouse import SqlWarehouse
from shared.core.chain import Segment
from shared.core.errors import PipelineError, SystemicError, WarehouseUnavailable
from shared.logs import RedactingFormatter
from shared.ports.warehouse import Candidate, CheckpointUpdate, Status, Stored

log = logging.getLogger(__name__)

# What the child runs when asked: the port's methods and the SQL base's statements; nothing else (a name
# outside this set is refused, not looked up).
CALLS = frozenset(
    {
        "create_schema",
        "check_schema",
        "add_traders",
        "candidates",
        "source_conflicts",
        "forget_wallets",
        "in_flight",
        "lease",
        "claim",
        "unclaim",
        "release_leases",
        "segments",
        "merge_batch",
        "lookup_candidates",
        "claim_lookups",
        "merge_lookups",
        "status",
        "complete_wallets",
        "query",
        "execute",
        "transaction",
    }
)
PROJECT_ROOT = Path(__file__).resolve().parents[3]


class WarehouseProcess(SqlWarehouse):
    """The Warehouse port over a DuckDB file that a child process owns (see the module's docstring)."""

    d = DUCKDB

    def __init__(self, path: str | Path, *, must_exist: bool = False) -> None:
        self.path = str(path)
        self.names = st.Names(DUCKDB)
        self._lock = threading.Lock()
        self._closed = False
        ours, theirs = socket.socketpair()
        command = [sys.executable, "-m", __name__, str(theirs.fileno()), self.path]
        if must_exist:
            command.append("--must-exist")
        log_file = _log_file()
        if log_file:
            command += ["--log", log_file]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
        try:
            self._child = subprocess.Popen(command, pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        try:
            ready: dict[str, Any] = self._reply("open")
        except BaseException:
            self._stop()
            raise
        self.batch_rows = ready["batch_rows"]
        self.pid = self._child.pid
        atexit.register(self.close)

    # -- the channel ------------------------------------------------------------------------------------

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        payload = pickle.dumps((name, args, kwargs))  # an argument that does not pickle fails here, unsent
        with self._lock:
            if self._closed:
                raise WarehouseUnavailable(f"the warehouse process of {self.path} is closed")
            in_step = False
            try:
                try:
                    self._conn.send_bytes(payload)
                    reply = self._conn.recv_bytes()
                except (EOFError, OSError) as exc:
                    raise self._gone(exc) from None
                in_step = True
            finally:
                if not in_step and not self._closed:
                    # Interrupted between the call and its reply (a KeyboardInterrupt, say): the reply may
                    # still come, and the next call would read it as its own. The channel is done; so is
                    # the child (a transaction it had open is rolled back, as after a kill).
                    self._closed = True
                    self._child.kill()
                    self._stop()
        return self._answer(name, reply)

    def _reply(self, name: str) -> Any:
        try:
            reply = self._conn.recv_bytes()
        except (EOFError, OSError) as exc:
            raise self._gone(exc) from None
        return self._answer(name, reply)

    def _answer(self, name: str, reply: bytes) -> Any:
        try:
            kind, value = pickle.loads(reply)
        except Exception as exc:  # e.g. an error class this process cannot import
            raise WarehouseUnavailable(f"the warehouse process's answer to {name} cannot be read: {exc}") from None
        if kind == "error":
            raise value
        return value

    def _gone(self, exc: BaseException) -> WarehouseUnavailable:
        code = self._child.poll()
        if code is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self._child.wait(timeout=2)
        self._closed = True
        self._conn.close()
        return WarehouseUnavailable(
            f"the warehouse process of {self.path} ended (exit status {code}): {type(exc).__name__} {exc}"
        )

    def close(self) -> None:
        """Ask the child to close the file (DuckDB folds its WAL in) and wait until it has, so that the
        next command can open it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(OSError):
                self._conn.send(("close", (), {}))
            self._stop()
        atexit.unregister(self.close)

    def _stop(self) -> None:
        """Our end closed (what was sent is still read; then the child sees the end and exits), then the
        child waited for: a close folds the WAL into the file, which can take seconds."""
        self._conn.close()
        try:
            self._child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()

    # -- what a dialect provides, and the port: each one call to the child -------------------------------

    def create_schema(self) -> None:
        self._call("create_schema")

    def check_schema(self) -> None:
        self._call("check_schema")

    def query(self, sql: Sql) -> Iterator[dict[str, Any]]:
        return iter(self._call("query", sql))

    def execute(self, sql: Sql) -> int:
        return int(self._call("execute", sql))

    def transaction(self, statements: list[str], sql: Sql) -> None:
        self._call("transaction", statements, sql)

    def staged_rows(self, uris: list[str], columns: Any) -> Any:
        raise NotImplementedError("the part files are staged in the warehouse process (merge_batch, merge_lookups)")

    def staged_batch(
        self, uris: list[str], segments: list[Segment], checkpoints: list[CheckpointUpdate], now: datetime
    ) -> Any:
        raise NotImplementedError("the part files are staged in the warehouse process (merge_batch, merge_lookups)")

    def add_traders(self, wallets: Any) -> int:
        return int(self._call("add_traders", list(wallets)))

    def candidates(
        self, now: datetime, limit: int, source: str | None = None, sync_before: datetime | None = None
    ) -> Iterator[Candidate]:
        return iter(self._call("candidates", now, limit, source=source, sync_before=sync_before))

    def source_conflicts(self, source: str, limit: int = 1000) -> list[tuple[str, str]]:
        return list(self._call("source_conflicts", source, limit))

    def forget_wallets(self, wallets: list[str]) -> int:
        return int(self._call("forget_wallets", wallets))

    def in_flight(self, now: datetime) -> int:
        return int(self._call("in_flight", now))

    def lease(self, leases: list[tuple[str, str]], now: datetime, until: datetime, reason: str) -> None:
        self._call("lease", leases, now, until, reason)

    def claim(self, leases: list[tuple[str, str]], now: datetime, until: datetime, token: str) -> set[str]:
        return set(self._call("claim", leases, now, until, token))

    def unclaim(self, token: str, wallets: list[str]) -> None:
        self._call("unclaim", token, wallets)

    def release_leases(self, reason: str = "in_flight") -> int:
        return int(self._call("release_leases", reason))

    def segments(self, keys: Any) -> list[Segment]:
        return list(self._call("segments", list(keys)))

    def merge_batch(
        self, uris: list[str], segments: list[Segment], checkpoints: list[CheckpointUpdate], now: datetime
    ) -> None:
        self._call("merge_batch", uris, segments, checkpoints, now)

    def lookup_candidates(
        self, kind: str, now: datetime, stale_before: datetime, miss_before: datetime, limit: int
    ) -> list[str]:
        return list(self._call("lookup_candidates", kind, now, stale_before, miss_before, limit))

    def claim_lookups(self, kind: str, keys: list[str], now: datetime, until: datetime, token: str) -> set[str]:
        return set(self._call("claim_lookups", kind, keys, now, until, token))

    def merge_lookups(
        self, kind: str, uris: list[str], missing: list[str], found: list[str], source: str | None, now: datetime
    ) -> None:
        self._call("merge_lookups", kind, uris, missing, found, source, now)

    def status(self, now: datetime, sync_before: datetime | None = None) -> Status:
        result: Status = self._call("status", now, sync_before=sync_before)
        return result

    def complete_wallets(self, after: str | None, limit: int, wallets: list[str] | None = None) -> list[Stored]:
        return list(self._call("complete_wallets", after, limit, wallets))


def _log_file() -> str | None:
    """The file the runner logs to (`setup_logging`), for the child's lines too."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


# ---------------------------------------------------------------- the child


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when the one that started it dies (Linux), as a thread of one process would:
    a killed runner must not leave its warehouse writing, or holding the file's lock. (Linux sends it
    when the *thread* that started the child ends: WarehouseProcess is made on a thread that lives as
    long as the run, the CLI's main thread.)"""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


def _sendable(value: Any) -> Any:
    """A result as it can cross: an iterator read whole (the port's streams are bounded by their limit)."""
    if isinstance(value, Iterator):
        return list(value)
    return value


def serve(conn: Connection, path: str, must_exist: bool) -> int:
    try:
        from shared.adapters.local.duckdb import DuckDBWarehouse

        warehouse = DuckDBWarehouse(path, must_exist=must_exist)
    except PipelineError as exc:
        conn.send(("error", exc))
        return 1
    conn.send(("ok", {"batch_rows": warehouse.batch_rows}))
    try:
        while True:
            try:
                name, args, kwargs = conn.recv()
            except EOFError:  # the runner is gone without a close
                return 0
            if name == "close":
                return 0
            try:
                if name not in CALLS:
                    raise SystemicError(f"the warehouse process has no call {name!r}")
                reply = ("ok", _sendable(getattr(warehouse, name)(*args, **kwargs)))
            except Exception as exc:  # the caller's to judge, as if it had run in its process
                if not isinstance(exc, PipelineError):
                    log.exception("warehouse call %s failed", name)
                reply = ("error", exc)
            try:
                conn.send(reply)
            except (OSError, EOFError):
                return 0
            except Exception as exc:  # a reply that does not pickle
                conn.send(("error", WarehouseUnavailable(f"the reply to {name} cannot be sent: {exc}")))
    finally:
        warehouse.close()


def main(argv: list[str]) -> int:
    parent = os.getppid()
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's: it stops, then closes us
    fd, path = int(argv[0]), argv[1]
    if "--log" in argv:
        handler = logging.FileHandler(argv[argv.index("--log") + 1])
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s[warehouse] %(message)s"))
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
    conn = Connection(fd)
    try:
        return serve(conn, path, "--must-exist" in argv)
    finally:
        conn.close()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
